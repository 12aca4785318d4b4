"""Routing: weights respected, keys sticky, weight changes move as few keys as possible."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from tabserve.deployment.routing import choose_variant, rendezvous, shadow_of, traffic_shares, unit_hash
from tabserve.settings import Policy

KEYS = [f"user-{i}" for i in range(20_000)]


def ab(**weights: float) -> Policy:
    return Policy(strategy="ab", weights=weights)


def split(policy: Policy) -> dict[str, str]:
    return {key: choose_variant(policy, key, 0.0) for key in KEYS}


def test_unit_hash_is_stable_and_in_the_open_interval() -> None:
    assert unit_hash("user-1", "a") == unit_hash("user-1", "a") != unit_hash("user-1", "b")
    assert all(0 < unit_hash(key, "s") < 1 for key in KEYS[:1000])


@pytest.mark.parametrize("weights", [{"a": 70, "b": 30}, {"a": 1, "b": 1, "c": 2}, {"a": 5, "b": 95}])
def test_the_split_follows_the_weights(weights: dict[str, float]) -> None:
    counts = Counter(split(ab(**weights)).values())
    total = sum(weights.values())
    for name, weight in weights.items():
        assert counts[name] / len(KEYS) == pytest.approx(weight / total, abs=0.015)


def test_a_zero_weight_gets_nothing() -> None:
    assert set(split(ab(a=0, b=1)).values()) == {"b"}


def test_raising_one_weight_only_moves_keys_to_it() -> None:
    before, after = split(ab(a=70, b=20, c=10)), split(ab(a=70, b=20, c=30))
    moved = [key for key in KEYS if before[key] != after[key]]
    assert {after[key] for key in moved} == {"c"}
    # c's share goes from 10% to 25%: 15% of the keys is the least that can move.
    assert len(moved) / len(KEYS) == pytest.approx(0.15, abs=0.015)


def test_removing_a_variant_only_moves_its_own_keys() -> None:
    before, after = split(ab(a=1, b=1, c=1)), split(ab(a=1, b=1))
    assert all(before[key] == "c" for key in KEYS if before[key] != after[key])


def test_canary_percent_is_sticky_and_monotone() -> None:
    def canary(percent: float) -> dict[str, str]:
        policy = Policy(strategy="canary", champion="a", candidate="b", canary_percent=percent)
        return split(policy)

    five, twenty_five = canary(5), canary(25)
    assert sum(v == "b" for v in five.values()) / len(KEYS) == pytest.approx(0.05, abs=0.01)
    assert all(twenty_five[key] == "b" for key in KEYS if five[key] == "b")  # nobody goes back


def test_without_a_key_the_draw_decides() -> None:
    policy = Policy(strategy="canary", champion="a", candidate="b", canary_percent=30)
    rng = random.Random(1)
    counts = Counter(choose_variant(policy, None, rng.random()) for _ in range(20_000))
    assert counts["b"] / 20_000 == pytest.approx(0.30, abs=0.015)
    assert choose_variant(ab(a=1, b=3), None, 0.2) == "a" and choose_variant(ab(a=1, b=3), None, 0.3) == "b"


def test_single_blue_green_and_shadow_answer_from_one_variant() -> None:
    assert choose_variant(Policy(active="blue"), "k", 0.5) == "blue"
    assert choose_variant(Policy(strategy="blue-green", active="green"), "k", 0.5) == "green"
    shadow = Policy(strategy="shadow", champion="a", candidate="b")
    assert choose_variant(shadow, "k", 0.9) == "a" and shadow_of(shadow) == "b"
    assert shadow_of(Policy(strategy="canary", champion="a", candidate="b")) is None


def test_traffic_shares() -> None:
    names = ["a", "b"]
    assert traffic_shares(ab(a=3, b=1), names) == {"a": 0.75, "b": 0.25}
    canary = Policy(strategy="canary", champion="a", candidate="b", canary_percent=20)
    assert traffic_shares(canary, names) == pytest.approx({"a": 0.8, "b": 0.2})
    assert traffic_shares(Policy(strategy="shadow", champion="a", candidate="b"), names) == {
        "a": 1.0,
        "b": 0.0,
    }


def test_rendezvous_ignores_non_positive_weights() -> None:
    assert {rendezvous(key, {"a": -1, "b": 2}) for key in KEYS[:100]} == {"b"}
