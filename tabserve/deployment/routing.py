"""Which variant answers a request: pure functions of the policy, a sticky key and a random draw.

A/B splits use weighted rendezvous hashing: each key scores every variant with its own hash
and the weight, and the best score wins. The same key always lands on the same variant, the
split follows the weights, and changing a weight only moves the keys that must move (keys
only leave variants whose weight fell, and only go to variants whose weight rose).
"""

from __future__ import annotations

import hashlib
import math

from tabserve.settings import Policy

HASH_SCALE = float(1 << 64)


def unit_hash(key: str, salt: str) -> float:
    """A stable number in (0, 1) for a key (the same on every worker and after restarts)."""
    digest = hashlib.blake2b(f"{salt}\x00{key}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 0.5) / HASH_SCALE


def rendezvous(key: str, weights: dict[str, float]) -> str:
    """The variant with the highest weighted score for this key."""
    best, best_score = "", -math.inf
    for name, weight in sorted(weights.items()):
        if weight <= 0:
            continue
        score = -weight / math.log(unit_hash(key, name))
        if score > best_score:
            best, best_score = name, score
    return best


def weighted_draw(draw: float, weights: dict[str, float]) -> str:
    """The variant a uniform draw in [0, 1) falls on (no key: not sticky)."""
    total = sum(weight for weight in weights.values() if weight > 0)
    edge = 0.0
    positive = [(name, weight) for name, weight in sorted(weights.items()) if weight > 0]
    for name, weight in positive:
        edge += weight / total
        if draw < edge:
            return name
    return positive[-1][0]


def choose_variant(policy: Policy, key: str | None, draw: float) -> str:
    """The variant that answers: sticky by `key` when there is one, else by the random `draw`."""
    if policy.strategy == "ab":
        return rendezvous(key, policy.weights) if key else weighted_draw(draw, policy.weights)
    if policy.strategy == "canary":
        point = unit_hash(key, "canary") if key else draw
        # Raising the percentage only moves keys from champion to candidate.
        return str(policy.candidate if point < policy.canary_percent / 100 else policy.champion)
    return str(policy.primary)


def shadow_of(policy: Policy) -> str | None:
    """The variant that scores a copy of every request, if any."""
    return policy.candidate if policy.strategy == "shadow" else None


def traffic_shares(policy: Policy, names: list[str]) -> dict[str, float]:
    """The share of answered traffic each variant should get (shadow copies are not answers)."""
    shares = dict.fromkeys(names, 0.0)
    if policy.strategy == "ab":
        total = sum(weight for weight in policy.weights.values() if weight > 0)
        shares.update({name: max(weight, 0) / total for name, weight in policy.weights.items()})
    elif policy.strategy == "canary":
        shares[str(policy.champion)] = 1 - policy.canary_percent / 100
        shares[str(policy.candidate)] = policy.canary_percent / 100
    else:
        shares[str(policy.primary)] = 1.0
    return shares
