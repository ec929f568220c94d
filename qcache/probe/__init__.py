"""Short, focused measurements against a live Redis for ``qcache tune`` and the main job's ``--profiles``.

Each function measures one thing the tuner decides on (codec, batch sizes,
pool sizes, write strategies, tier latencies, a profile's mixed workload)
and returns the records :mod:`qcache.tune` reads, so a decision made from a
benchmark run and one made from a probe go through the same code. Caches are
built on keys under a unique prefix and cleared (their own namespace only)
afterwards; nothing is flushed.
"""

from qcache.probe.measure import (
    Probe,
    measure_batches,
    measure_codec,
    measure_l1_overhead,
    measure_levels,
    measure_policy_gets,
    measure_pools,
    measure_profile,
    measure_write_strategies,
)
from qcache.probe.payloads import KINDS, value_of

__all__ = [
    "KINDS",
    "Probe",
    "measure_batches",
    "measure_codec",
    "measure_l1_overhead",
    "measure_levels",
    "measure_policy_gets",
    "measure_pools",
    "measure_profile",
    "measure_write_strategies",
    "value_of",
]
