"""The load shape, chosen with ``--shape`` (steady, ramp, spike, soak, chaos, compare) without editing files.

Steady, the default, runs ``-u`` users (10) spawned at ``-r`` per second for
``-t`` (60 s). The schedules themselves live in :mod:`qcache.load.shapes`.
"""

from qcache.load.harness import QCacheShape

__all__ = ["QCacheShape"]
