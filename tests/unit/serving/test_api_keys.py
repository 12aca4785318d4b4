"""API keys: parsing, constant-time lookup, rights by path, open paths and the key file's rotation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tabserve.errors import ConfigurationError
from tabserve.serving.api_key_guard import access_control
from tabserve.serving.api_keys import (
    RIGHTS,
    KeyRing,
    bearer_of,
    find_key,
    hash_key,
    is_open,
    needed_rights,
    parse_keys,
)
from tabserve.settings import OPEN_PATHS, ServingSettings


def test_keys_parse_with_default_and_named_rights() -> None:
    keys = parse_keys(f"app:{hash_key('a')}, labeller:{hash_key('b')}:feedback\n# comment\n", "test")
    assert [(key.name, sorted(key.rights)) for key in keys] == [
        ("app", sorted(RIGHTS)),
        ("labeller", ["feedback"]),
    ]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("app:secret", "SHA-256"),
        (f"a b:{hash_key('x')}", "key name"),
        (f"app:{hash_key('x')}:admin", "unknown right"),
        (f"app:{hash_key('x')},app:{hash_key('y')}", "twice"),
    ],
)
def test_a_bad_entry_is_named(text: str, reason: str) -> None:
    with pytest.raises(ConfigurationError, match=reason):
        parse_keys(text, "TABSERVE_API_KEYS")


def test_the_presented_key_is_found_by_its_hash_only() -> None:
    keys = parse_keys(f"one:{hash_key('first')},two:{hash_key('second')}", "test")
    assert find_key(keys, "second").name == "two"  # type: ignore[union-attr]
    assert find_key(keys, "third") is None
    assert find_key(keys, hash_key("second")) is None  # the hash itself is not a key


def test_bearer_header() -> None:
    assert bearer_of("Bearer abc ") == "abc"
    assert bearer_of("bearer abc") == "abc"
    assert bearer_of("Basic abc") is None
    assert bearer_of("Bearer ") is None
    assert bearer_of(None) is None


def test_rights_by_path_and_unknown_paths_need_every_right() -> None:
    assert needed_rights("/predict_batch") == {"score"}
    assert needed_rights("/score_file/status") == {"score"}
    assert needed_rights("/score_file_result") == {"score"}
    assert needed_rights("/explain") == {"explain"}
    assert needed_rights("/outcome_batch") == {"feedback"}
    assert needed_rights("/something_new") == set(RIGHTS)


def test_open_paths() -> None:
    assert is_open("/livez", OPEN_PATHS) and is_open("/", OPEN_PATHS)
    assert is_open("/static_content/index.css", OPEN_PATHS)
    assert is_open("/admin/deployment", OPEN_PATHS)  # its own token
    assert not is_open("/predict", OPEN_PATHS)
    assert not is_open("/livez_not", OPEN_PATHS)


def test_required_keys_without_any_stop_the_start() -> None:
    with pytest.raises(ConfigurationError, match="TABSERVE_API_KEYS"):
        access_control(ServingSettings(api_keys_required=True), {})
    assert access_control(ServingSettings(), {}).ring is None


def test_the_file_is_read_again_when_it_changes_and_a_bad_one_keeps_the_last_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"old:{hash_key('k1')}\n")
    ring = KeyRing({}, str(path))
    assert [key.name for key in ring.keys(now=0.0)] == ["old"]
    path.write_text(f"old:{hash_key('k1')}\nnew:{hash_key('k2')}\n")
    os.utime(path, (1, 1))  # a changed time, whatever the clock's resolution
    assert [key.name for key in ring.keys(now=0.5)] == ["old"]  # checked at most once a second
    assert [key.name for key in ring.keys(now=2.0)] == ["old", "new"]
    path.write_text("broken line\n")
    os.utime(path, (2, 2))
    assert [key.name for key in ring.keys(now=4.0)] == ["old", "new"]


def test_a_missing_or_bad_file_at_start_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not a readable file"):
        KeyRing({}, str(tmp_path / "absent"))
    (tmp_path / "bad").write_text("name:not-a-hash\n")
    with pytest.raises(ConfigurationError, match="SHA-256"):
        KeyRing({}, str(tmp_path / "bad"))
