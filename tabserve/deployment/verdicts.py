"""The A/B report's verdict codes, kept in its JSON: one set for accuracy and business outcomes."""

B_BETTER, A_BETTER, NO_DIFFERENCE, NOT_ENOUGH = (
    "B better",
    "A better",
    "no significant difference",
    "not enough data",
)
