"""The decision logic behind the notebooks and ``qcache tune``: pure code over result files.

    from qcache.tune import open_run, gather, curves_from_run, recommend, Workload, render_env

    run = open_run()                                   # the latest run under results/
    rec = recommend(Workload(memory_budget_mb=128), gather(run), curves_from_run(run))
    print(render_env(rec))

Nothing here measures, plots or writes except :func:`write_env`; the
notebooks draw (:mod:`qcache.tune.plots`) and ``qcache tune`` measures
(:mod:`qcache.tune.measure`).
"""

from qcache.tune.batching import (
    BatchChoice,
    PoolChoice,
    choose_batch_size,
    choose_pool_size,
    pool_knee,
)
from qcache.tune.compression import (
    CompressionChoice,
    EncryptionCost,
    Saving,
    choose_compression,
    encryption_costs,
    savings,
)
from qcache.tune.curves import (
    Curve,
    by_workload,
    compute_curves,
    curves_from_documents,
    curves_from_run,
    workload_sources,
)
from qcache.tune.envfile import render_env, validate_env_text, write_env
from qcache.tune.errors import TuneError
from qcache.tune.evidence import (
    BatchSample,
    CodecSample,
    EncryptionSample,
    Evidence,
    OpTime,
    PoolSample,
    gather,
)
from qcache.tune.health import (
    Check,
    breaches,
    count_by_status,
    hit_rate_checks,
    key_figures,
    latency_checks,
)
from qcache.tune.policy import CONFIG_DEFAULT_POLICY, PolicyChoice, choose_policy
from qcache.tune.recommend import Choice, Recommendation, Workload, recommend
from qcache.tune.runs import default_env_output, find_results_root, open_run
from qcache.tune.sizing import (
    SizeForTarget,
    bytes_per_entry,
    entries_for_budget,
    size_for_hit_rate,
)
from qcache.tune.thresholds import (
    SEED_THRESHOLDS,
    Status,
    hit_rate_status,
    latency_status,
)
from qcache.tune.writes import (
    DURABILITY,
    MixCost,
    StrategyChoice,
    choose_level,
    choose_write_strategy,
    mix_costs,
)

__all__ = [
    "CONFIG_DEFAULT_POLICY",
    "DURABILITY",
    "SEED_THRESHOLDS",
    "BatchChoice",
    "BatchSample",
    "Check",
    "Choice",
    "CodecSample",
    "CompressionChoice",
    "Curve",
    "EncryptionCost",
    "EncryptionSample",
    "Evidence",
    "MixCost",
    "OpTime",
    "PolicyChoice",
    "PoolChoice",
    "PoolSample",
    "Recommendation",
    "Saving",
    "SizeForTarget",
    "Status",
    "StrategyChoice",
    "TuneError",
    "Workload",
    "breaches",
    "by_workload",
    "bytes_per_entry",
    "choose_batch_size",
    "choose_compression",
    "choose_level",
    "choose_policy",
    "choose_pool_size",
    "choose_write_strategy",
    "compute_curves",
    "count_by_status",
    "curves_from_documents",
    "curves_from_run",
    "default_env_output",
    "encryption_costs",
    "entries_for_budget",
    "find_results_root",
    "gather",
    "hit_rate_checks",
    "hit_rate_status",
    "key_figures",
    "latency_checks",
    "latency_status",
    "mix_costs",
    "open_run",
    "pool_knee",
    "recommend",
    "render_env",
    "savings",
    "size_for_hit_rate",
    "validate_env_text",
    "workload_sources",
    "write_env",
]
