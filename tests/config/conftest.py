"""Fixtures for the configuration tests: an environment free of qcache variables."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from qcache.config.schema import FieldIndex
from qcache.config.sections import BUILTIN_CACHE_TYPES

ALL_ENV_NAMES = tuple(FieldIndex(BUILTIN_CACHE_TYPES).env_names())

#: Recognisable secret strings; tests assert they never appear in any output.
REDIS_SECRET = "hunter2-REDIS-PW-7f3a"
# A valid AES-256 key (base64 of 32 bytes) that is easy to spot.
KEY_SECRET = "U0VDUkVULUtFWS1ET05PVExFQUstVEhJUy0xMjM0NTY="


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Work in an empty directory with no qcache variable in os.environ."""
    for name in ALL_ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def write_env(path: Path, text: str) -> Path:
    """Write ``.env`` content (dedented by the caller) and return the path."""
    path.write_text(text, encoding="utf-8")
    return path
