"""Exact latencies: recorded in µs, folded in bulk, drained by workers and merged (never averaged)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qcache.load.histogram import (
    HIGHEST_US,
    LatencyRecorder,
    Summary,
    decode_histogram,
    encode_histogram,
)


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _percentile(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q, method="inverted_cdf"))


def test_percentiles_are_exact_in_microseconds_not_milliseconds() -> None:
    recorder = LatencyRecorder(clock=FakeClock())
    values = np.arange(20, 221)  # 20..220 µs: Locust would call all of these 0 ms
    for value in values:
        recorder.record("U", "get", float(value), hit=True)
    [(key, stats)] = recorder.operations()
    summary = Summary.of(stats.histogram)
    assert key == ("U", "get")
    assert stats.count == len(values) and stats.hits == len(values)
    for got, q in ((summary.p50_us, 50), (summary.p90_us, 90), (summary.p99_us, 99)):
        assert got == pytest.approx(_percentile(values, q), rel=1e-3)
    assert summary.max_us == 220


def test_outcomes_are_counted_per_operation() -> None:
    recorder = LatencyRecorder(clock=FakeClock())
    recorder.record("U", "get", 10, hit=True)
    recorder.record("U", "get", 11, hit=False)
    recorder.record("U", "get", 12, error=True)
    recorder.record("U", "set", 13)
    ops = dict(recorder.operations())
    assert (ops[("U", "get")].hits, ops[("U", "get")].misses, ops[("U", "get")].errors) == (1, 1, 1)
    assert (ops[("U", "set")].count, ops[("U", "set")].hits, ops[("U", "set")].misses) == (1, 0, 0)


def test_bad_latencies_are_refused_and_huge_ones_clamped() -> None:
    recorder = LatencyRecorder(clock=FakeClock())
    with pytest.raises(ValueError, match="non-negative"):
        recorder.record("U", "get", math.nan)
    with pytest.raises(ValueError, match="non-negative"):
        recorder.record("U", "get", -1.0)
    recorder.record("U", "get", 10 * HIGHEST_US)
    recorder.record("U", "get", 0.2)
    [(_, stats)] = recorder.operations()
    assert stats.histogram.get_max_value() >= HIGHEST_US * 0.999
    assert stats.histogram.get_min_value() == 1


def test_merging_workers_equals_recording_everything_in_one_process() -> None:
    rng = np.random.default_rng(7)
    clock = FakeClock()
    fast = rng.integers(20, 80, size=5000)  # a worker with L1 hits
    slow = rng.integers(300, 9000, size=500)  # a worker hitting Redis under load
    workers = [LatencyRecorder(clock=clock, sends_to_master=True) for _ in range(2)]
    single = LatencyRecorder(clock=clock)
    master = LatencyRecorder(clock=clock)
    for worker, values in zip(workers, (fast, slow), strict=True):
        for i, value in enumerate(values):
            worker.record("U", "get", float(value), hit=i % 3 != 0)
            single.record("U", "get", float(value), hit=i % 3 != 0)
            if i == len(values) // 2:  # a periodic report in the middle, then the final one
                master.merge(worker.drain(), source=f"w{id(worker)}")
        master.merge(worker.drain(), source=f"w{id(worker)}")
    merged, = (stats for _, stats in master.operations())
    expected, = (stats for _, stats in single.operations())
    assert (merged.count, merged.hits, merged.misses) == (expected.count, expected.hits, expected.misses)
    assert Summary.of(merged.histogram) == Summary.of(expected.histogram)
    # Averaging the two workers' p99 would give a very different figure than the true p99.
    both = np.concatenate([fast, slow])
    assert Summary.of(merged.histogram).p99_us == pytest.approx(_percentile(both, 99), rel=2e-3)
    averaged = (_percentile(fast, 99) + _percentile(slow, 99)) / 2
    assert abs(Summary.of(merged.histogram).p99_us - averaged) > 1000


def test_a_drain_reports_each_record_once() -> None:
    clock = FakeClock()
    worker = LatencyRecorder(clock=clock, sends_to_master=True)
    worker.record("U", "get", 5)
    first = worker.drain()
    second = worker.drain()
    assert len(first["operations"]) == 1 and second["operations"] == []
    assert second["seconds"] == []


def test_only_a_worker_drains_and_versions_must_match() -> None:
    with pytest.raises(RuntimeError, match="worker"):
        LatencyRecorder().drain()
    master = LatencyRecorder()
    payload = LatencyRecorder(sends_to_master=True).drain()
    with pytest.raises(ValueError, match="different qcache releases"):
        master.merge({**payload, "version": 99})
    with pytest.raises(ValueError, match="base64"):
        master.merge({**payload, "operations": [["U", "get", "not base64!", 1, 0, 0, 0]]})


def test_timeline_buckets_requests_by_wall_clock_second() -> None:
    clock = FakeClock(1_000_000.2)
    recorder = LatencyRecorder(clock=clock)
    recorder.record("U", "get", 10)
    recorder.record("U", "get", 20, error=True)
    clock.now = 1_000_001.7
    recorder.record("U", "get", 30)
    recorder.record_l2_hits(4)
    timeline = recorder.timeline()
    assert [second for second, _ in timeline] == [1_000_000, 1_000_001]
    assert (timeline[0][1].count, timeline[0][1].errors) == (2, 1)
    assert (timeline[1][1].count, timeline[1][1].l2_hits) == (1, 4)


def test_active_time_counts_a_class_while_any_of_its_users_runs() -> None:
    clock = FakeClock(100.0)
    recorder = LatencyRecorder(clock=clock)
    recorder.user_started("U")
    clock.now = 102.0
    recorder.user_started("U")
    clock.now = 103.0
    recorder.user_stopped("U")
    clock.now = 105.0
    recorder.user_stopped("U")
    clock.now = 110.0
    assert recorder.active_seconds() == {"U": pytest.approx(5.0)}


def test_workers_running_at_once_do_not_add_up_their_active_time() -> None:
    clock = FakeClock(100.0)
    workers = [LatencyRecorder(clock=clock, sends_to_master=True) for _ in range(2)]
    for worker in workers:
        worker.user_started("U")
    clock.now = 104.0
    master = LatencyRecorder(clock=clock)
    for n, worker in enumerate(workers):
        worker.user_stopped("U")
        master.merge(worker.drain(), source=f"w{n}")
    assert master.active_seconds()["U"] == pytest.approx(4.0)


def test_histograms_survive_their_wire_form() -> None:
    recorder = LatencyRecorder(clock=FakeClock())
    for value in (12, 40, 900, 15000):
        recorder.record("U", "get", value)
    [(_, stats)] = recorder.operations()
    copy = decode_histogram(encode_histogram(stats.histogram))
    assert Summary.of(copy) == Summary.of(stats.histogram)


def test_batch_outcomes_count_key_by_key_and_travel_to_the_master() -> None:
    worker = LatencyRecorder(clock=FakeClock(), sends_to_master=True)
    worker.record("B", "get_many", 300)
    worker.count_outcomes("B", "get_many", hits=70, misses=30)
    master = LatencyRecorder(clock=FakeClock())
    master.merge(worker.drain())
    [(_, stats)] = master.operations()
    assert (stats.count, stats.hits, stats.misses) == (1, 70, 30)
    with pytest.raises(ValueError, match="negative"):
        worker.count_outcomes("B", "get_many", hits=-1, misses=0)
