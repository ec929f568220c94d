"""Typed, validated configuration for qcache, loaded from the environment.

    from qcache.config import CacheConfig

    config = CacheConfig.from_env()            # environment + optional .env file
    config = CacheConfig.from_profile("prod")  # a named profile, no environment
    for issue in config.validate():            # every problem at once
        print(issue)

See :mod:`qcache.config.env` for the precedence of the layers and
:mod:`qcache.config.profiles` for the profiles.
"""

from qcache.config.cache_config import CacheConfig
from qcache.config.dynamic import Changes
from qcache.config.env import DEFAULT_ENV_FILE
from qcache.config.profiles import PROFILE_ALIASES, PROFILE_NAMES
from qcache.config.secret import Secret
from qcache.config.sections import (
    BUILTIN_CACHE_TYPES,
    CacheTypeConfig,
    ConfigSnapshot,
    CoreConfig,
    MemoryConfig,
    MonitoringConfig,
    PerformanceConfig,
    RedisConfig,
    SecurityConfig,
)
from qcache.config.validation import ConfigIssue, Severity
from qcache.config.watch import EnvFileWatcher, WatchOutcome
from qcache.types import CacheLevel, WriteStrategy

__all__ = [
    "BUILTIN_CACHE_TYPES",
    "DEFAULT_ENV_FILE",
    "PROFILE_ALIASES",
    "PROFILE_NAMES",
    "CacheConfig",
    "CacheLevel",
    "CacheTypeConfig",
    "Changes",
    "ConfigIssue",
    "ConfigSnapshot",
    "CoreConfig",
    "EnvFileWatcher",
    "MemoryConfig",
    "MonitoringConfig",
    "PerformanceConfig",
    "RedisConfig",
    "Secret",
    "SecurityConfig",
    "Severity",
    "WatchOutcome",
    "WriteStrategy",
]
