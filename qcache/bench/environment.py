"""What a benchmark number depends on besides the code: CPUs, Python, the Redis client parser.

Recorded in every run (pytest-benchmark's machine info and ``environment.json``)
so that two runs are only compared knowing how they differ.
"""

from __future__ import annotations

import os
import platform
from typing import Any


def hiredis_in_use() -> bool:
    """Whether redis-py parses replies with hiredis (the C parser) in this interpreter."""
    try:
        from redis.utils import HIREDIS_AVAILABLE
    except ImportError:  # pragma: no cover - redis is a core dependency
        return False
    return bool(HIREDIS_AVAILABLE)


def describe_environment() -> dict[str, Any]:
    """CPU count, Python, platform and client library versions (no host names, no paths)."""
    import redis

    import qcache

    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "system": f"{platform.system()} {platform.machine()}",
        "hiredis": hiredis_in_use(),
        "redis_py": redis.__version__,
        "qcache": qcache.__version__,
    }
