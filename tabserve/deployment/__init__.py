"""Variants and how traffic reaches them: policy, routing, shadow, rollouts, the admin API, A/B reports."""
