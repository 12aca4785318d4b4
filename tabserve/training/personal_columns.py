"""Columns that look personal (emails, phone numbers, names, addresses), for the training report
to suggest a `monitoring.log_policy` for (issue 22): the log keeps every served value unless
told otherwise, and the person training the model is the one who knows the table.

A guess from the column's name and from the categories kept in its schema: it can miss a column
(free text under an unhelpful name) and it says why it chose each one, so the user can judge.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from tabserve.schema import FeatureSchema

_NAME_HINTS = (
    (re.compile(r"e[-_ ]?mail|courriel", re.I), "an email column, by its name"),
    (re.compile(r"phone|mobile|^tel|fax", re.I), "a phone number column, by its name"),
    (
        re.compile(r"(^|[-_ ])(first|last|full|sur|given|family|user|customer)?[-_ ]?name$|^nom$", re.I),
        "a person's name, by its column name",
    ),
    (
        re.compile(r"address|street|postcode|zip|ssn|passport|birth", re.I),
        "an address or identity column, by its name",
    ),
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_PHONE = re.compile(r"^\+?[\d\s().-]{7,}$")


def _by_values(values: Iterable[str]) -> str | None:
    listed = [value for value in values if value]
    if listed and sum(bool(_EMAIL.match(v)) for v in listed) >= len(listed) / 2:
        return "its values look like email addresses"
    if (
        listed
        and sum(bool(_PHONE.match(v)) and sum(c.isdigit() for c in v) >= 7 for v in listed) >= len(listed) / 2
    ):
        return "its values look like phone numbers"
    return None


def personal_columns(schema: FeatureSchema | None, dropped: Iterable[str] = ()) -> dict[str, str]:
    """Pure: column -> why it looks personal (features by name or listed values; left-out ones by name)."""
    found: dict[str, str] = {}
    features = schema.features if schema is not None else []
    for feature in features:
        reason = _by_values(feature.categories or [])
        found_name = next((why for pattern, why in _NAME_HINTS if pattern.search(feature.name.strip())), None)
        if reason or found_name:
            found[feature.name] = reason or str(found_name)
    for name in dropped:
        why = next((why for pattern, why in _NAME_HINTS if pattern.search(name.strip())), None)
        if why is not None:
            found[name] = why
    return found


def suggestion_lines(found: dict[str, str]) -> list[str]:
    """The report's lines: each column and why, then the policy to paste (hash: drift still works)."""
    if not found:
        return []
    policy = ", ".join(f"{name}: hash" for name in found)
    return [
        "personal-looking columns (a guess; the prediction log keeps every served value unless told):",
        *(f"  {name}: {why}" for name, why in found.items()),
        f"  suggested: monitoring.log_policy: {{{policy}}} with TABSERVE_LOG_HASH_KEY set, or drop "
        "(docs/privacy.md#what-the-log-keeps)",
    ]
