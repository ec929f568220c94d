"""The five configuration profiles side by side, and their measured figures when a run has them (60_profiles).

The main job with ``--profiles a,b`` measures one short mixed workload per
profile (:mod:`qcache.tune.measure`) into ``<run>/profiles/<name>.json``;
:func:`profile_measurements` reads them back. Without them only the settings
can be compared, and the notebook says so.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from qcache.bench import Run
from qcache.config import CacheConfig
from qcache.config.profiles import PROFILE_NAMES
from qcache.tune.errors import TuneError

PROFILES_DIR = "profiles"
#: The settings that differ in ways that matter for speed and memory.
COMPARED = (
    "CACHE_LEVEL",
    "CACHE_WRITE_STRATEGY",
    "MEMORY_CACHE_EVICTION_POLICY",
    "MEMORY_CACHE_MAX_SIZE",
    "MEMORY_CACHE_MAX_MEMORY_MB",
    "CACHE_DEFAULT_TTL",
    "REDIS_MAX_CONNECTIONS",
    "CACHE_CONNECTION_POOL_SIZE",
    "CACHE_BATCH_SIZE",
    "CACHE_COMPRESSION_ENABLED",
    "CACHE_ENCRYPTION_ENABLED",
    "CACHE_METRICS_ENABLED",
    "REDIS_SSL_ENABLED",
)


@dataclass(frozen=True)
class ProfileSettings:
    name: str
    values: dict[str, str]


def profile_settings(names: Sequence[str] = PROFILE_NAMES) -> list[ProfileSettings]:
    """The compared settings of each profile as the configuration loads them (no environment read)."""
    found = []
    for name in names:
        env = CacheConfig.from_profile(name).to_env()
        found.append(ProfileSettings(name, {key: env.get(key, "") for key in COMPARED}))
    return found


@dataclass(frozen=True)
class ProfileMeasurement:
    """One profile driving the same mixed workload against the same Redis."""

    profile: str
    operations: int
    ops_per_s: float
    get_p50_ms: float
    get_p99_ms: float
    set_p50_ms: float
    set_p99_ms: float
    hit_rate: float  # gets answered by the cache (L1 or Redis)
    l1_hit_rate: float  # gets answered by L1 alone: what the profile's L1 size and policy buy

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


_FIELDS = ("operations", "ops_per_s", "get_p50_ms", "get_p99_ms", "set_p50_ms", "set_p99_ms", "hit_rate", "l1_hit_rate")


def read_measurement(path: Path) -> ProfileMeasurement:
    """One ``profiles/<name>.json``; an error naming the file and field when it is malformed."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TuneError(f"cannot read {path}: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("profile"), str):
        raise TuneError(f"{path}: not a profile measurement (no 'profile')")
    values: dict[str, float] = {}
    for key in _FIELDS:
        value = doc.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise TuneError(f"{path}: {key!r} should be a finite number, got {value!r}")
        values[key] = float(value)
    return ProfileMeasurement(doc["profile"], int(values.pop("operations")), **values)


def profile_measurements(run: Run) -> list[ProfileMeasurement]:
    """The profiles measured inside ``run`` (empty when the main job ran without --profiles)."""
    base = run.layout.root / PROFILES_DIR
    if not base.is_dir():
        return []
    return [read_measurement(p) for p in sorted(base.glob("*.json"))]
