"""API keys: who may call which endpoint (issue 22). Parsing and decisions are pure; `KeyRing`
re-reads its file when it changes, so a key is rotated without a restart.

A key is configured by name and the SHA-256 of the key, never the key itself:
`name:sha256hex[:right+right]`, several separated by commas (`TABSERVE_API_KEYS`) or one per
line (`serving.api_keys_file`, `#` starts a comment). Without rights a key has every right but
admin (the admin API keeps its own token). A presented key is hashed and compared with every
configured hash by `hmac.compare_digest`, so the time taken does not tell how much of it matched.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tabserve.errors import ConfigurationError

logger = logging.getLogger(__name__)

API_KEYS_ENV = "TABSERVE_API_KEYS"
RIGHTS = ("score", "explain", "feedback")
# The right each endpoint needs, by path prefix (`/predict` covers `/predict_batch`, `/score_file`
# its task routes and `/score_file_result`). An endpoint not listed needs every right: a new one
# is closed to limited keys until it is given its right here.
RIGHT_OF_PREFIX = (
    ("/predict", "score"),
    ("/score_file", "score"),
    ("/model", "score"),
    ("/explain", "explain"),
    ("/feedback", "feedback"),
    ("/outcome", "feedback"),
)
ALWAYS_OPEN_PREFIX = "/admin"  # its own token (TABSERVE_ADMIN_TOKEN), in the same header
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ApiKey:
    name: str
    digest: bytes
    rights: frozenset[str]


def parse_keys(text: str, where: str) -> list[ApiKey]:
    """Pure: the keys in `text` (comma- or line-separated); ConfigurationError names a bad entry."""
    entries = (part.split("#", 1)[0].strip() for line in text.splitlines() for part in line.split(","))
    keys: list[ApiKey] = []
    for entry in filter(None, entries):
        name, _, rest = entry.partition(":")
        digest, _, rights_text = rest.partition(":")
        rights = frozenset(filter(None, rights_text.split("+"))) or frozenset(RIGHTS)
        if not _NAME.match(name):
            raise ConfigurationError(
                f"{where}: key name {name[:70]!r}: use 1-64 letters, digits, '_', '.', '-'"
            )
        if not _SHA256.match(digest.lower()):
            raise ConfigurationError(
                f"{where}: key {name!r}: give the SHA-256 of the key as 64 hex digits "
                "(`printf %s KEY | sha256sum`), never the key itself"
            )
        if unknown := sorted(rights - set(RIGHTS)):
            raise ConfigurationError(
                f"{where}: key {name!r}: unknown right(s) {unknown}; known: {list(RIGHTS)}"
            )
        if any(key.name == name for key in keys):
            raise ConfigurationError(f"{where}: key name {name!r} appears twice")
        keys.append(ApiKey(name, bytes.fromhex(digest.lower()), rights))
    return keys


def hash_key(key: str) -> str:
    """The hex SHA-256 to configure for `key`."""
    return hashlib.sha256(key.encode()).hexdigest()


def find_key(keys: Iterable[ApiKey], presented: str) -> ApiKey | None:
    """The configured key whose hash is the presented key's, compared in constant time."""
    digest = hashlib.sha256(presented.encode()).digest()
    found = None
    for key in keys:  # every key is compared: the loop does not stop at the match
        if hmac.compare_digest(digest, key.digest):
            found = key
    return found


def is_open(path: str, open_paths: Iterable[str]) -> bool:
    """Pure: an open path matches exactly, or as a folder (`/static_content` covers its files)."""
    if path == ALWAYS_OPEN_PREFIX or path.startswith(ALWAYS_OPEN_PREFIX + "/"):
        return True
    return any(
        path == item or (item != "/" and path.startswith(item.rstrip("/") + "/")) for item in open_paths
    )


def needed_rights(path: str) -> frozenset[str]:
    """Pure: the rights a key needs for `path` (every right for an endpoint not listed)."""
    for prefix, right in RIGHT_OF_PREFIX:
        if path.startswith(prefix):
            return frozenset({right})
    return frozenset(RIGHTS)


def bearer_of(authorization: str | None) -> str | None:
    """Pure: the key of an `Authorization: Bearer <key>` header, or None."""
    scheme, _, given = (authorization or "").partition(" ")
    return given.strip() or None if scheme.lower() == "bearer" else None


class KeyRing:
    """The configured keys: the environment's, plus the file's as it is now.

    The file is read again when its modification time or size changes (checked at most once a
    second); a file that became unreadable or wrong keeps the last good keys, with an ERROR.
    """

    CHECK_EVERY_S = 1.0

    def __init__(self, environ: Mapping[str, str], key_file: str | None) -> None:
        self.fixed = parse_keys(environ.get(API_KEYS_ENV, ""), API_KEYS_ENV)
        self.path = Path(key_file) if key_file else None
        self._stamp: tuple[float, int] | None = None
        self._from_file: list[ApiKey] = []
        self._checked_at = -self.CHECK_EVERY_S
        if self.path is not None:
            if not self.path.is_file():
                raise ConfigurationError(f"serving.api_keys_file: {self.path} is not a readable file")
            self._reload(strict=True)

    def keys(self, now: float) -> list[ApiKey]:
        if self.path is not None and now - self._checked_at >= self.CHECK_EVERY_S:
            self._checked_at = now
            self._reload(strict=False)
        return [*self.fixed, *self._from_file]

    def _reload(self, strict: bool) -> None:
        assert self.path is not None
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime, stat.st_size)
        except OSError:
            stamp = (-1.0, -1)  # gone: said once, until it comes back
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            self._from_file = parse_keys(self.path.read_text(), str(self.path))
        except (OSError, ConfigurationError) as error:
            if strict:
                raise ConfigurationError(f"serving.api_keys_file: {error}") from error
            logger.error(
                "API keys file %s not re-read (%s); the last good keys stay in force", self.path, error
            )
            return
        logger.info("API keys read from %s: %s", self.path, ", ".join(key.name for key in self._from_file))
