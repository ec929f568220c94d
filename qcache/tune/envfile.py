"""A recommendation as a ``.env`` file, checked by :class:`qcache.config.CacheConfig` before it is written.

The file carries no secret: a recommendation never sets a password or a key,
and :func:`render_env` refuses a setting the configuration marks secret.
"""

from __future__ import annotations

import os
from pathlib import Path

from qcache.config import CacheConfig
from qcache.config.env import parse_env_text
from qcache.config.schema import FieldIndex
from qcache.config.sections import BUILTIN_CACHE_TYPES
from qcache.config.validation import ConfigIssue, Severity
from qcache.errors import ConfigError
from qcache.tune.errors import TuneError
from qcache.tune.recommend import Recommendation

ENV_FILE_MODE = 0o600


def render_env(recommendation: Recommendation, source: str = "") -> str:
    """The ``.env`` text: a header naming the workload, then each setting under its reason."""
    index = FieldIndex(BUILTIN_CACHE_TYPES)
    w = recommendation.workload
    lines = [
        "# qcache configuration recommended by the tuner" + (f" from {source}" if source else ""),
        (
            f"# workload: {w.memory_budget_mb:g} MB L1 budget, {w.read_ratio:.0%} reads, {w.value_bytes:,} B "
            f"{w.value_kind} values, {w.latency_target_ms:g} ms latency target, {w.concurrency} concurrent callers"
        ),
        "# Secrets (REDIS_PASSWORD, CACHE_ENCRYPTION_KEY) are never written here: set them yourself.",
    ]
    for choice in recommendation.choices:
        spec = index.by_env(choice.setting)
        if spec is None:
            raise TuneError(f"{choice.setting} is not a configuration variable")
        if spec.is_secret:
            raise TuneError(f"{choice.setting} is a secret and has no place in a recommended .env")
        lines += ["", f"# {choice.reason}", f"{choice.setting}={choice.value}"]
    for note in recommendation.notes:
        lines.append(f"# note: {note}")
    return "\n".join(lines) + "\n"


def validate_env_text(text: str) -> list[ConfigIssue]:
    """The errors (not warnings) :class:`CacheConfig` finds in ``text`` alone, without the environment."""
    try:
        config = CacheConfig.from_env(env_file=None, environ={}, **parse_env_text(text))
    except ConfigError as exc:
        raise TuneError("the recommended settings do not load: " + "; ".join(exc.problems)) from exc
    return [issue for issue in config.validate() if issue.severity is Severity.ERROR]


def write_env(text: str, path: Path) -> Path:
    """Validate ``text`` and write it to ``path`` (mode 600, like every .env qcache writes)."""
    errors = validate_env_text(text)
    if errors:
        raise TuneError("the recommended configuration is invalid: " + "; ".join(str(e) for e in errors))
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, ENV_FILE_MODE)
    with os.fdopen(descriptor, "w", encoding="utf-8") as sink:
        sink.write(text)
    os.chmod(path, ENV_FILE_MODE)
    return path
