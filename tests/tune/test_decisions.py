"""Write strategy, level, compression, batch and pool choices on synthetic measurements with known answers."""

from __future__ import annotations

import pytest

from qcache.tune import (
    BatchSample,
    CodecSample,
    OpTime,
    PoolSample,
    TuneError,
    choose_batch_size,
    choose_compression,
    choose_level,
    choose_pool_size,
    choose_write_strategy,
    pool_knee,
)


def op_times(back_set_us: float = 10.0) -> list[OpTime]:
    return [
        OpTime("WRITE_THROUGH", "BOTH", "get", 2.0),
        OpTime("WRITE_THROUGH", "BOTH", "set", 400.0),
        OpTime("WRITE_BACK", "BOTH", "get", 2.0),
        OpTime("WRITE_BACK", "BOTH", "set", back_set_us),
        OpTime("WRITE_AROUND", "BOTH", "get", 2.0),
        OpTime("WRITE_AROUND", "BOTH", "set", 300.0),
    ]


def test_write_heavy_workload_picks_write_back() -> None:
    choice = choose_write_strategy(op_times(), read_ratio=0.5)
    assert choice.strategy == "WRITE_BACK"
    assert "lost if the process dies" in choice.reason
    assert choice.cost("WRITE_BACK").us_per_op == pytest.approx(0.5 * 2 + 0.5 * 10)  # type: ignore[union-attr]


def test_read_heavy_workload_keeps_write_through() -> None:
    assert choose_write_strategy(op_times(), read_ratio=0.95).strategy == "WRITE_THROUGH"


def test_write_back_without_a_real_speedup_is_not_worth_its_risk() -> None:
    assert choose_write_strategy(op_times(back_set_us=300.0), read_ratio=0.3).strategy == "WRITE_THROUGH"


def test_read_ratio_out_of_range_is_refused() -> None:
    with pytest.raises(TuneError):
        choose_write_strategy(op_times(), read_ratio=1.5)


def test_level_drops_l1_when_it_would_rarely_hit() -> None:
    assert choose_level(0.5, 1.0, 200.0).level == "BOTH"
    assert choose_level(0.01, 1.0, 200.0).level == "L2_REDIS"


def codec(kind: str, rows: list[tuple[str, str, int, int, float]]) -> list[CodecSample]:
    return [CodecSample(alg, kind, size, ser, stored, us) for alg, size, ser, stored, us in rows]


def test_incompressible_values_switch_compression_off() -> None:
    samples = codec(
        "embedding",
        [
            ("none", "1KB", 1000, 1008, 3.0),
            ("lz4", "1KB", 1000, 1010, 4.0),
            ("none", "16KB", 16000, 16008, 10.0),
            ("lz4", "16KB", 16000, 15900, 14.0),
        ],
    )
    choice = choose_compression(samples, "embedding", l2_get_us=200.0)
    assert not choice.enabled and choice.threshold_bytes is None
    assert "does not pay" in choice.reason


def test_threshold_is_the_smallest_size_from_which_compression_pays() -> None:
    samples = codec(
        "text",
        [
            ("none", "1KB", 1000, 1008, 3.0),
            ("lz4", "1KB", 1000, 900, 4.0),  # saves only 11%
            ("none", "16KB", 16384, 16392, 10.0),
            ("lz4", "16KB", 16384, 3000, 14.0),
            ("none", "128KB", 131072, 131080, 60.0),
            ("lz4", "128KB", 131072, 20000, 90.0),
        ],
    )
    choice = choose_compression(samples, "text", l2_get_us=200.0)
    assert choice.enabled and choice.algorithm == "lz4" and choice.threshold_bytes == 16384


def test_compression_too_slow_for_its_round_trip_does_not_pay() -> None:
    # 390 us more for a 1 KB value: over half of a 200 us Redis get (the limit grows with the size).
    samples = codec("text", [("none", "1KB", 1024, 1032, 10.0), ("zstd", "1KB", 1024, 200, 400.0)])
    assert not choose_compression(samples, "text", l2_get_us=200.0).enabled
    with pytest.raises(TuneError):
        choose_compression(samples, "search", l2_get_us=200.0)


def test_batch_size_is_the_smallest_near_the_best_cost_per_key() -> None:
    samples = [BatchSample("get_many", n, us) for n, us in ((1, 200.0), (10, 400.0), (100, 1000.0), (1000, 9500.0))]
    choice = choose_batch_size(samples, latency_target_ms=50)
    assert choice.size == 100  # 10 us/key, within 10% of the best 9.5 us/key at 1,000
    assert choose_batch_size(samples, latency_target_ms=5).size == 100
    assert choose_batch_size(samples, latency_target_ms=0.5).size == 10  # 1 ms calls break a 0.5 ms target


def test_pool_size_at_the_workload_concurrency_and_its_knee() -> None:
    samples = [
        PoolSample(pool, 8, tput, 1.0, p99)
        for pool, tput, p99 in ((1, 2000.0, 9.0), (4, 6000.0, 3.0), (10, 6300.0, 2.5), (50, 6200.0, 40.0))
    ]
    samples += [PoolSample(1, 1, 3000.0, 0.1, 0.5)]
    choice = choose_pool_size(samples, concurrency=8, latency_target_ms=10)
    assert choice.threads == 8 and choice.pool == 4 and choice.knee == 4
    assert pool_knee([s for s in samples if s.threads == 8]) == 4
    with pytest.raises(TuneError):
        choose_pool_size(samples, concurrency=0, latency_target_ms=10)


def test_concurrent_callers_get_at_least_two_connections() -> None:
    samples = [PoolSample(pool, 4, tput, 0.2, 0.5) for pool, tput in ((1, 9000.0), (4, 6000.0), (10, 6200.0))]
    assert choose_pool_size(samples, concurrency=4, latency_target_ms=10).pool == 4
    single = [PoolSample(pool, 1, tput, 0.2, 0.5) for pool, tput in ((1, 9000.0), (4, 6000.0))]
    assert choose_pool_size(single, concurrency=1, latency_target_ms=10).pool == 1


def test_the_algorithm_is_judged_at_the_value_size_and_a_near_tie_goes_to_the_cheaper_one() -> None:
    samples = codec(
        "search",
        [
            ("none", "1KB", 1024, 1032, 10.0),
            ("lz4", "1KB", 1024, 400, 12.0),
            ("zstd", "1KB", 1024, 380, 40.0),
            ("none", "64KB", 65536, 65544, 60.0),
            ("lz4", "64KB", 65536, 9000, 70.0),
            ("zstd", "64KB", 65536, 4000, 150.0),
        ],
    )
    # At 1 KB zstd saves 2 points more for 28 us more: lz4. At 64 KB zstd stores half of lz4's bytes: zstd.
    assert choose_compression(samples, "search", l2_get_us=200.0, value_bytes=1000).algorithm == "lz4"
    assert choose_compression(samples, "search", l2_get_us=200.0, value_bytes=60_000).algorithm == "zstd"
