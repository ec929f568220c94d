"""ADAPTIVE: the cache runs W-TinyLFU or ARC (or S3-FIFO in small caches, LRU in large), whichever is ahead now.

W-TinyLFU's frequency filter is what wins on Zipf-like workloads and scans,
and what loses where recency rules: keys reused a few times soon after their
first request are turned away at the door. ARC keeps them. Neither policy's
own knobs make up for the other (the window climber and its ghosts get
W-TinyLFU close to LRU there, not to ARC), so this policy runs both: one
drives the cache, and the other replays the same requests beside it as a
*shadow*, keys only, with its own hits counted. At the end of each period the
:class:`Scoreboard` compares them, and the cache switches to a shadow's
policy when that one has been clearly ahead for a while. In caches of up to
:data:`SMALL_CACHE` entries S3-FIFO is a third candidate, and with sampled
shadows LRU (both below).

* **Full shadows** (capacity up to :data:`SHADOW_ENTRIES`): each shadow is a
  whole policy, and the cache's own hits score the policy driving it.
  A switch swaps two: the chosen shadow, made to hold exactly the cache's
  keys (keys it holds that the cache does not leave it, the cache's keys it
  lacks enter it in the driving policy's order), drives the cache, and the
  policy that drove it stays on as a shadow.
* **Sampled shadows** (above it): every candidate replays the requests of a
  fixed sample of keys, chosen by a hash that does not depend on the
  process, in caches of :data:`SHADOW_ENTRIES` entries scaled as the sample
  is (miniature simulations). A switch builds the new policy over the
  cache's keys in the driving policy's order, least recent first (W-TinyLFU's
  window last: the newest arrivals); its own history starts then.

Either way, the keys the outgoing policy held as reused (W-TinyLFU's
protected segment, ARC's T2) and the incoming one did not hold are hit once
more as they enter it, so they start where it keeps reused keys. In the
measurements that chose these settings, keys entering ARC as newcomers only
cost a cache of Zipf 1.0 with scans at 10% 0.9 point against staying on
W-TinyLFU; hit once more, they gain 0.05. A switch a glance decided (below)
is the exception: the workload has just changed, the keys the outgoing
policy held as reused are the past phase's, and they enter as newcomers.

Its W-TinyLFU is built as :data:`FREQUENCY_SIDE` says: no doorkeeper in its
sketch, its window's growth gated at 0.7x main's hits per entry, its
window shrunk on a window ghost while it earns under a quarter of that,
the winner of each admission duel sent to probation's back, and far
returns counted, fading the sketch when they end the window's shrink
(W_TINYLFU on its own: a doorkeeper, 0.3, no such shrink, the winner
stays, no far returns; see
:class:`~qcache.memory.policies.wtinylfu.WTinyLFUPolicy`). On its own that W-TinyLFU falls
1.8 points under LRU on a narrow shifting working set at 25 entries; beside
ARC, which takes over there (20.18% against LRU's 20.57%), it need not
cover recency, and it serves frequency and loops better. Against the
defaults, ADAPTIVE went from 7.31-7.84% to 8.92-9.59% on loops 10x the cache
(LIRS: 9.50-9.77%), from 23.36/43.85/57.94% to 24.12/44.13/58.03% on web07 at
0.1/1/10% of its keys, and from 20.64/46.37/68.21% to 21.38/46.50/68.30% on
OLTP; over the regime workloads of the tests and those two traces it gained
0.17 point on average, and lost at most 0.36 (a loop after a Zipf phase at
10%, where it stays 21 points above the best reference policy). Rotating
the duels' winners then took web07 to 24.68/44.46/58.26% and OLTP to
21.00/46.93/68.42% (0.1% lost 0.34 point there, still 2 above the best
reference), and gained 36 points over the regime workloads in all (see
``rotate_probation``). Far returns then took a loop after a shifting set
from 53.21% to 63.08% (2Q 61.28%) and gained 19.7 points over the regime
workloads in all; web07 went to 24.68/44.39/58.24% and OLTP to
21.01/46.91/68.42% (see ``far_ratio``). The fade took the loop after
recent reuse from 73.77% to 78.25% (2Q 78.06%) and gained 7.7 points over
the regime workloads in all; web07 went to 24.68/44.45/58.24% and OLTP to
20.99/46.91/68.42% (see ``far_fade``).

With whole shadows, a switch waits for the same candidate to lead at the
end of two periods in a row by more than half a point (:data:`FULL_MARGIN`,
:data:`FULL_PATIENCE`: the switch hands the cache to a policy with its own
history); with sampled ones a lead of a point at the end of one period does
(:data:`SAMPLED_MARGIN`). Against a point and one period everywhere, that met
two misses of a held-out sweep (small caches of reuse at 12 and 60 entries:
87.30% to 87.91% against LRU's 88.22%, 10.23% to 10.91% against LIRS's
11.36%) and cut a switching cost (reuse at 301 entries, 31.16% to 31.27%
against its W-TinyLFU's 31.75%); both traces, loops 10x the cache and every
case with sampled shadows stayed hit for hit, and other cases lost at most
0.17 point (some gained up to 0.46). Two periods with sampled shadows too
only delayed switches to ARC that paid (two phase mixes at 10% lost 0.35 and
1.93 point).
No switch comes before :data:`WARM_PERIODS` full periods are scored: two.
W-TinyLFU drives from the start, and where recency leads it trails LRU by 2
to 4 points a period until the cache changes hands (on a shifting set of
2,500 keys at 1,217 entries, three warm periods cost about 0.7 point of the
run). Against three, two met three misses (shifting sets at 25 and 96
entries, 20.02% to 20.09% and 31.07% to 31.21% against LRU's 20.57% and
31.60%; reuse at 7,478, 49.24% to 49.37% against 49.75%) and gained 1.69
points over 189 synthetic cases; 5 lost, up to 0.47 point, where S3-FIFO
leads while a workload's hit ratio falls in its first periods and takes the
cache; both traces stayed hit for hit. One warm period with sampled shadows
made two misses (loops after a hot spot at 10%).
With whole shadows a lead of more than ten points in a single period
(:data:`SUDDEN_MARGIN`) switches at once, once the board is warm: a phase
change, such as recent reuse after Zipf with scans, where W-TinyLFU's
sketch still holds the past phase's keys. Waiting two periods for it took
reuse, Zipf with scans, reuse at 558 entries to 49.21% (ARC 50.27%); now
49.50%. Over the 189 synthetic cases it changed three, all gains (up to 0.95
point, two switching costs cut), and both traces stayed hit for hit; a
held-out sweep of 12 workloads written after the choice changed no case.
With sampled shadows the scoreboard also *glances* at them 16 times a
period (:data:`QUICK_CHECKS`): a candidate ten points ahead over the last
ticks that add up to 250 sampled requests takes over at once, mid-period.
A loop that fits the cache after a frequency phase is such a lead: W-TinyLFU
turns the loop's keys away until its sketch ages, for a period or more,
while ARC holds them after a pass or two. Glances lifted a hot spot, a
1,500-key loop and Zipf at 1,600 entries from 68.28% to 73.33% (LRU
72.12%), a Zipf, loop, Zipf mix at 10% from 67.02% to 70.99%, a Zipf phase
followed by one over new keys from 63.06% to 63.94% (ARC 64.89%), and lost
at most 0.03 point over 147 synthetic cases; both traces stayed hit for
hit; on a held-out sweep written after these settings were chosen (8
workloads, 24 cases) they changed one case, a loop after a hot spot, from
68.91% to 73.37%.
After a glance the incoming policy takes every key as a newcomer: the ones
the outgoing policy held as reused belong to the phase that just ended.
Hit once more, the hot spot's keys filled ARC's T2 while its T1, where the
loop's keys entered, had to grow one ghost hit at a time. As newcomers, a
Zipf, loop, Zipf mix at 10% went from 70.99% to 71.84% (LIRS 72.56%: met),
the hot spot, loop and Zipf at 1,600 entries from 73.33% to 74.16%, and a
Zipf phase followed by one over new keys from 63.94% to 64.50%; the largest
loss there was 0.05 point, both traces stayed hit for hit, and an eighth
sweep written after this choice (10 workloads, 30 cases) gained on three
loops after another phase (up to 1.75 point) and lost 1.19 point on a
shifting set after a hot spot (ARC, handed the cache at the phase change,
does better there with the hot spot's keys in T2).
S3-FIFO, whose small FIFO holds every newcomer for a while, leads both in
small caches where most keys come back a few requests later. As a third
candidate everywhere it met the two misses left on the tests' regime
workloads (reuse at 15 entries: 58.68% to 59.71% against S3-FIFO's 60.17%;
at 7: 76.56% to 77.31% against 77.68%), but it lost from 600 entries up:
loops 10x the cache of 6,000 and 60,000 keys fell to 8.17% and 7.95% (its
W-TinyLFU alone 9.07% and 9.30%, LIRS 9.57%), as S3-FIFO led while
W-TinyLFU was still learning the loop, and in the bursts of a loop's hits,
and each switch there and back cost more than it gained; the phase mix at
10% lost 0.57 point. Up to 301 entries all 13 cases it changed gained (up to
1.03 point), so it is a candidate up to :data:`SMALL_CACHE` entries only; a
fourth held-out sweep of 10 workloads (30 cases) then confirmed the rule:
one miss met (reuse at 30 entries, 43.11% to 44.48% against S3-FIFO's
45.05%), nothing lost. LIRS as a fourth candidate took the loops back but
missed the phase mix at 10%.
LRU is the third candidate with sampled shadows (above :data:`SHADOW_ENTRIES`):
it leads ARC on shifting sets, where LRU is the best online policy, and at
the start of a loop that fits the cache its shadow holds the loop a pass
sooner than ARC's, so a glance hands the loop to it. That met four misses
at 10% (a shifting set, 67.86% to 68.30% against LRU's 68.47%; a loop after a
hot spot, 73.94% to 74.77% against LIRS's 75.75%; a loop between two Zipf
phases, 67.44% to 68.28% against 68.66%; a shifting set after a hot spot,
76.66% to 78.55% against LRU's 79.03%) and moved two cases over the line
(Zipf, loop, Zipf: 71.84% to 71.30% against LIRS's 72.56%; recent reuse then
Zipf with scans, 0.01 point inside it: 50.26% to 50.18% against ARC's
51.25%); both traces stayed hit for hit. A tenth sweep of 12 workloads,
written after this choice, had no miss with or without it. LRU holds no
reused keys to hand over: after a switch from it every key enters the next
policy as a newcomer.

Every request is observed once, at the hit (``on_access``) or the insertion
(``on_insert``), so the simulator's replay (each policy in its own fast
loop, scored period by period) and the L1 store's hooks see the same
requests and take the same decisions: the tests compare them hit for hit. A switch falls due
at the end of a period and is made before the next request reaches the
policy, when the cache holds exactly its keys.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Protocol, cast

import numpy as np

from qcache.memory.policies.base import EvictionPolicy
from qcache.memory.policies.registry import create_policy, register_policy
from qcache.memory.policies.sketch import int_pair_hashes, stable_key

#: The candidates, in order: the first drives the cache from the start.
CANDIDATES = ("W_TINYLFU", "ARC")
#: A third candidate for small caches, up to SMALL_CACHE entries (see the module's docstring: it gained
#: in every case it changed up to 301 entries, and lost on loops from 600).
SMALL_CACHE_CANDIDATE, SMALL_CACHE = "S3_FIFO", 500
#: A third candidate with sampled shadows (above SHADOW_ENTRIES): LRU, best on shifting sets and at
#: the start of a loop that fits the cache (see the module's docstring).
SAMPLED_CANDIDATE = "LRU"
#: How W-TinyLFU is built here, where ARC covers recency (see the module's docstring).
FREQUENCY_SIDE: dict[str, bool | float] = {
    "doorkeeper": False, "gate_ratio": 0.7, "shrink_ratio": 4.0, "rotate_probation": True, "far_ratio": 4.0,
    "far_fade": True,
}
#: Shadows are whole policies up to this capacity, and caches of this many entries over a sample above it.
SHADOW_ENTRIES = 1000
#: How a switch is decided with whole shadows: a lead of half a point of hit ratio, held at the end
#: of two periods in a row. The switch hands the cache to a policy with its own history, so a small
#: lead pays; two periods keep a lead of a single period (noise, a policy still learning) from it.
FULL_MARGIN, FULL_PATIENCE = 0.005, 2
#: With sampled shadows: a point, at the end of one period. A switch starts a new policy, whose
#: start costs more, and a sample's scores are noisier; waiting a second period only delayed the
#: switches that paid (phase changes).
SAMPLED_MARGIN, SAMPLED_PATIENCE = 0.01, 1
#: Full periods scored before the first switch (or glance): a cache still filling favours whichever
#: policy fills fastest, and one still learning the workload trails for a while. Two, not three:
#: where recency leads, W-TinyLFU (driving from the start) trails every period until then (the
#: module's docstring).
WARM_PERIODS = 2
#: With whole shadows: a candidate more than ten points ahead of the policy driving the cache over
#: the last period alone takes over at once, once the board is warm. A lead that large at once is
#: a phase change, not noise, and waiting ``FULL_PATIENCE`` periods for it costs (the module's
#: docstring); the sampled shadows' glances do the same within a period.
SUDDEN_MARGIN = 0.1
#: A period holds at least this many requests, and at least a capacity's worth.
MIN_PERIOD = 10_000
#: With sampled shadows, a glance at the shadows QUICK_CHECKS times a period: a candidate that leads
#: by more than QUICK_MARGIN (ten points) over the last ticks adding up to QUICK_REQUESTS sampled
#: requests takes over at once. A loop that fits the cache after a frequency phase is such a lead:
#: W-TinyLFU turns its keys away until its sketch ages, ARC keeps them.
QUICK_CHECKS, QUICK_MARGIN, QUICK_REQUESTS = 16, 0.1, 250
_MASK32 = 0xFFFFFFFF
_SAMPLE_SALT = 0x5EED5A3D


class Candidate(Protocol):
    """What a candidate policy offers beyond the contract: its keys for a switch, and a fast replay."""

    def resident_keys(self) -> list[Hashable]:
        """The keys it tracks, in an order of its own that both replay and hooks reproduce."""
        ...

    def frequent_keys(self) -> list[Hashable]:
        """Those of them it holds as reused (hit since they entered), in the same kind of order."""
        ...

    def __contains__(self, key: object) -> bool: ...

    def access_if_held(self, key: Hashable) -> bool:
        """``on_access(key)`` if it tracks ``key``, and whether it did: a shadow's hit in one call."""
        ...

    def replay(
        self, keys: Sequence[Hashable], progress: Callable[[int], None] | None = ..., chunk: int = ..., *,
        job: int | None = None,
    ) -> int:
        """Hits of ``keys`` replayed as "get, insert on miss" (the simulator's fast loop; see CompiledReplay)."""
        ...

    def replay_segments(self, keys: Sequence[Hashable], ends: Sequence[int], *, job: int | None = None) -> list[int]:
        """The same replay cut at ``ends``: the hits of each segment."""
        ...


def _candidate(policy: EvictionPolicy) -> Candidate:
    """``policy`` as the candidate it is (W_TINYLFU, ARC and S3_FIFO implement :class:`Candidate`)."""
    return cast(Candidate, policy)


class Scoreboard:
    """When to switch: the candidates' hits per period, aged, and a margin to clear.

    Sans-IO: it is told each period's hits and answers with the candidate
    to switch to, or None. A candidate's score is its hits over the periods
    so far, each period's weight ``decay`` times the next one's (a horizon of
    about ``1 / (1 - decay)`` periods). A switch needs ``warm_periods``
    periods in a full cache first (a cache still filling favours whichever
    policy fills fastest), and a lead of more than ``margin`` of the
    requests scored (0.01: one point of hit ratio) over the candidate in
    place, held by the same candidate at the end of ``patience`` periods in
    a row: each switch costs hits while the new policy settles, and a
    single period's lead may be noise, or a policy still learning. A lead
    of more than ``sudden_margin`` in one period alone, once the board has
    scored ``warm_periods`` full periods before it, switches at once.
    """

    def __init__(
        self, candidates: int, *, decay: float = 0.8, margin: float = 0.01, warm_periods: int = WARM_PERIODS,
        patience: int = 1,
        quick_margin: float | None = None, quick_requests: int = 1, quick_window: int = 1,
        sudden_margin: float | None = None,
    ) -> None:
        if candidates < 2:
            raise ValueError(f"a scoreboard needs at least two candidates, got {candidates}")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay!r}")
        if margin < 0.0 or warm_periods < 0:
            raise ValueError("margin and warm_periods must be >= 0")
        if patience < 1:
            raise ValueError(f"patience must be at least 1 period, got {patience!r}")
        if (quick_margin is not None and quick_margin < 0.0) or quick_requests < 1 or quick_window < 1:
            raise ValueError("quick_margin must be >= 0, quick_requests and quick_window >= 1")
        if sudden_margin is not None and not sudden_margin >= 0.0:
            raise ValueError(f"sudden_margin must be None or >= 0, got {sudden_margin!r}")
        self.decay = decay
        self.margin = margin
        self.warm_periods = warm_periods
        self.patience = patience
        self.quick_margin = quick_margin
        self.quick_requests = quick_requests
        self.quick_window = quick_window
        self.sudden_margin = sudden_margin
        self._scores = [0.0] * candidates
        self._requests = 0.0
        self._full_periods = 0
        # The candidate that led by the margin at the end of the last period, and for how many in a row.
        self._leader: int | None = None
        self._streak = 0
        # For glances: the hits and requests of the full periods scored so far (not aged), and the
        # running totals marked at the last ``quick_window`` ticks.
        self._counted = [0] * candidates
        self._counted_requests = 0
        self._marks: deque[tuple[list[int], int]] = deque([(self._counted, 0)], maxlen=quick_window + 1)

    @property
    def scores(self) -> tuple[float, ...]:
        """Each candidate's aged hit ratio (0 to 1) over the periods scored."""
        requests = self._requests or 1.0
        return tuple(score / requests for score in self._scores)

    def close_period(self, hits: Sequence[int], requests: int, *, active: int, full: bool) -> int | None:
        """Score one period (``hits`` per candidate out of ``requests``); the candidate to switch to, or None."""
        if not full:
            # Still filling: nothing scored yet counts.
            self.reset()
            return None
        self._counted = [counted + hit for counted, hit in zip(self._counted, hits, strict=True)]
        self._counted_requests += requests
        decay = self.decay
        self._scores = [decay * score + hit for score, hit in zip(self._scores, hits, strict=True)]
        self._requests = decay * self._requests + requests
        self._full_periods += 1
        leader = self._leader_ahead(active)
        if leader is None:
            self._streak = 0
        elif leader == self._leader:
            self._streak += 1
        else:
            self._streak = 1
        self._leader = leader
        if leader is None or self._streak < self.patience:
            return self._sudden_leader(hits, requests, active)
        self._leader, self._streak = None, 0
        return leader

    def _sudden_leader(self, hits: Sequence[int], requests: int, active: int) -> int | None:
        """The period's best candidate if it led ``active`` by more than ``sudden_margin`` in it alone."""
        if self.sudden_margin is None or self._full_periods <= max(self.warm_periods, 1):
            return None
        best = max(range(len(hits)), key=hits.__getitem__)
        if best == active or hits[best] - hits[active] <= self.sudden_margin * requests:
            return None
        self._leader, self._streak = None, 0
        return best

    def glance(self, hits: Sequence[int], requests: int, *, active: int, closing: bool = False) -> int | None:
        """A tick within a period: the candidate to switch to at once, or None.

        ``hits`` per candidate out of ``requests`` are the period's so far.
        Over the fewest of the last ``quick_window`` ticks that add up to
        ``quick_requests`` requests, the best candidate must lead ``active``
        by more than ``quick_margin`` of them, once the board is warm (and
        it has scored at least one full period). A tick ``closing`` the
        period only notes its counts: :meth:`close_period` decides then.
        """
        now = [counted + hit for counted, hit in zip(self._counted, hits, strict=True)]
        now_requests = self._counted_requests + requests
        marks = self._marks
        decision = None
        if (
            not closing and self.quick_margin is not None
            and self._full_periods >= max(self.warm_periods, 1) and self._requests
        ):
            for then, then_requests in reversed(marks):
                window = now_requests - then_requests
                if window >= self.quick_requests:
                    gains = [hit - before for hit, before in zip(now, then, strict=True)]
                    best = max(range(len(gains)), key=gains.__getitem__)
                    if best != active and gains[best] - gains[active] > self.quick_margin * window:
                        self._leader, self._streak = None, 0
                        decision = best
                    break
        marks.append((now, now_requests))
        return decision

    def _leader_ahead(self, active: int) -> int | None:
        """The best candidate if it leads ``active`` by more than the margin (once warm), else None."""
        if self._full_periods < self.warm_periods or not self._requests:
            return None
        best = max(range(len(self._scores)), key=self._scores.__getitem__)
        if best != active and self._scores[best] - self._scores[active] > self.margin * self._requests:
            return best
        return None

    def reset(self) -> None:
        """Forget every score (the cache was cleared, or is filling again)."""
        self._scores = [0.0] * len(self._scores)
        self._requests = 0.0
        self._full_periods = 0
        self._leader = None
        self._streak = 0
        self._counted = [0] * len(self._scores)
        self._counted_requests = 0
        self._marks.clear()
        self._marks.append((self._counted, 0))


class _Shadow:
    """A candidate replaying requests on its own, keys only, its hits counted."""

    __slots__ = ("_insert", "_miss", "_victim", "capacity", "hit", "hits", "policy", "size")

    def __init__(self, policy: EvictionPolicy) -> None:
        self.policy = policy
        self.capacity = policy.capacity
        self.hits = 0
        self.size = 0
        # Bound once: a shadow's request is on every L1 operation of a cache with whole shadows.
        self.hit = _candidate(policy).access_if_held
        hooks = policy.hooks()
        self._miss, self._insert, self._victim = hooks.on_miss, hooks.on_insert, policy.victim

    def enter(self, key: Hashable) -> None:
        """A request for a key it does not track (``hit`` said no): a miss, then an insert."""
        self._miss(key)
        self._insert(key)
        if self.size >= self.capacity:
            self._victim()
        else:
            self.size += 1

    def replay(self, keys: Sequence[Hashable], job: int) -> None:
        """The same requests through the policy's own fast loop (``job``: see :func:`_replay`)."""
        if keys:
            self.hits += _replay(self.policy, keys, job)
            self.size = len(self.policy)

    def forget(self, key: Hashable) -> None:
        """The cache dropped ``key`` itself (a delete, an expiry): so does the shadow."""
        if key in _candidate(self.policy):
            self.policy.on_remove(key)
            self.size -= 1


def _replay(
    policy: EvictionPolicy, keys: Sequence[Hashable], job: int, progress: Callable[[int], None] | None = None,
    chunk: int = 1 << 16,
) -> int:
    """``policy``'s own replay of ``keys``, part of a replay of ``job`` requests.

    A period, and a sample of one, are shorter than the replays a candidate
    would compile on its own account: the whole replay decides (``job``).
    """
    return _candidate(policy).replay(keys, progress, chunk, job=job)


def _adopt(policy: EvictionPolicy, keys: Iterable[Hashable], frequent: Iterable[Hashable]) -> None:
    """Make ``policy`` track exactly ``keys``: its others leave, the missing ones enter in order.

    Of those that enter, the ones the outgoing policy held as ``frequent``
    (hit since they entered) are hit once more, so the incoming policy
    starts with them where it keeps reused keys (ARC's T2, W-TinyLFU's
    sketch) rather than as newcomers that a scan would flush first.
    """
    wanted = dict.fromkeys(keys)
    candidate = _candidate(policy)
    for key in candidate.resident_keys():
        if key not in wanted:
            policy.on_remove(key)
    entered = {key: None for key in wanted if key not in candidate}
    for key in entered:
        policy.on_insert(key)
    for key in frequent:
        if key in entered:
            policy.on_access(key)


@register_policy("ADAPTIVE")
class AdaptivePolicy(EvictionPolicy):
    """W-TinyLFU or ARC, switched at run time on what shadows of both measure.

    ``shadow_entries`` is where full shadows give way to sampled ones; a
    period is ``capacity`` requests, at least ``min_period``; ``decay``,
    ``margin`` and ``patience`` (by default :data:`FULL_MARGIN` and
    :data:`FULL_PATIENCE`, or :data:`SAMPLED_MARGIN` and
    :data:`SAMPLED_PATIENCE`), ``warm_periods``, with whole shadows
    ``sudden_margin`` (None: no switch on one period's lead alone) and with
    sampled shadows ``quick_margin`` (None: no glances within a period) go
    to the :class:`Scoreboard`; ``seed`` to W-TinyLFU's sketch.
    """

    def __init__(
        self,
        capacity: int,
        *,
        shadow_entries: int = SHADOW_ENTRIES,
        decay: float = 0.8,
        margin: float | None = None,
        warm_periods: int = WARM_PERIODS,
        patience: int | None = None,
        min_period: int = MIN_PERIOD,
        quick_margin: float | None = QUICK_MARGIN,
        sudden_margin: float | None = SUDDEN_MARGIN,
        seed: int = 0,
    ) -> None:
        super().__init__(capacity)
        if shadow_entries < 1 or min_period < 1:
            raise ValueError(f"shadow_entries and min_period must be positive, got {shadow_entries!r}, {min_period!r}")
        if quick_margin is not None and not quick_margin >= 0.0:
            raise ValueError(f"quick_margin must be None or >= 0, got {quick_margin!r}")
        if sudden_margin is not None and not sudden_margin >= 0.0:
            raise ValueError(f"sudden_margin must be None or >= 0, got {sudden_margin!r}")
        self._seed = seed
        #: The policies it chooses from, the first driving the cache from the start.
        self._full = capacity <= shadow_entries
        if capacity <= SMALL_CACHE:
            third: tuple[str, ...] = (SMALL_CACHE_CANDIDATE,)
        else:
            third = () if self._full else (SAMPLED_CANDIDATE,)
        self.candidates = CANDIDATES + third
        self._shadow_capacity = capacity if self._full else shadow_entries
        # A key is sampled when its 32-bit hash falls under this (all keys with full shadows).
        self._threshold = (self._shadow_capacity << 32) // capacity
        self._board = Scoreboard(
            len(self.candidates), decay=decay, warm_periods=warm_periods,
            margin=(FULL_MARGIN if self._full else SAMPLED_MARGIN) if margin is None else margin,
            patience=(FULL_PATIENCE if self._full else SAMPLED_PATIENCE) if patience is None else patience,
            # Glances with sampled shadows only: whole ones switch on a lead held over periods.
            quick_margin=None if self._full else quick_margin, quick_requests=QUICK_REQUESTS,
            quick_window=QUICK_CHECKS, sudden_margin=sudden_margin if self._full else None,
        )
        self._period = max(capacity, min_period)
        checks = 1 if self._full or quick_margin is None else min(QUICK_CHECKS, self._period)
        # The period cut into ``checks`` ticks: a glance at the end of each, the period's score at the last.
        self._ticks = [
            (tick + 1) * self._period // checks - tick * self._period // checks for tick in range(checks)
        ]
        self._shadows: list[_Shadow | None] = []
        self._reset()

    def _new(self, index: int, capacity: int) -> EvictionPolicy:
        name = self.candidates[index]
        if name == "W_TINYLFU":
            return create_policy(name, capacity, seed=self._seed, **FREQUENCY_SIDE)
        return create_policy(name, capacity)

    def _reset(self) -> None:
        #: How many times the cache changed hands since it started (tests, notebooks).
        self.switches = 0
        self._active_index = 0
        self._active = self._new(0, self.capacity)
        if self._full:
            # The cache's own hits score the policy driving it; the other one is a shadow.
            self._shadows = [None, *(_Shadow(self._new(i, self.capacity)) for i in range(1, len(self.candidates)))]
        else:
            self._shadows = [_Shadow(self._new(i, self._shadow_capacity)) for i in range(len(self.candidates))]
        self._watching = self._watchers()
        self._active_hits = 0
        self._tick = 0
        self._left = self._ticks[0]
        self._sampled_requests = 0
        self._due: int | None = None
        # Whether the switch due was a glance's (a sudden change: see _switch).
        self._due_to_glance = False
        # Whether the cache has been full (the scoreboard waits for it). With full shadows: at its
        # capacity, or evicting under a bound of its driver's (the L1 store's byte bound) before that.
        # With sampled ones: once both shadows are (the cache, which they scale, is too then), so the
        # replay need not run the cache itself to each period's end to know.
        self._filled = False
        self._board.reset()

    def _watchers(self) -> tuple[_Shadow, ...]:
        """The shadows as they are now (with whole shadows, all but the driving policy's slot)."""
        return tuple(shadow for shadow in self._shadows if shadow is not None)

    # -- introspection (tests, notebooks) ------------------------------------

    @property
    def active(self) -> str:
        """The name of the policy driving the cache now."""
        return self.candidates[self._active_index]

    @property
    def scores(self) -> dict[str, float]:
        """Each candidate's aged hit ratio, as the last period's decision saw it."""
        return dict(zip(self.candidates, self._board.scores, strict=True))

    def resident_keys(self) -> list[Hashable]:
        """The keys tracked, as the policy driving the cache orders them."""
        return _candidate(self._active).resident_keys()

    # -- the contract --------------------------------------------------------

    def on_miss(self, key: Hashable) -> None:
        if self._due is not None:
            self._switch()
        self._active.on_miss(key)

    def on_insert(self, key: Hashable) -> None:
        if self._due is not None:
            self._switch()
        self._active.on_insert(key)
        self._observe(key)

    def on_access(self, key: Hashable) -> None:
        if self._due is not None:
            self._switch()
        self._active.on_access(key)
        self._active_hits += 1
        self._observe(key)

    def on_remove(self, key: Hashable) -> None:
        self._active.on_remove(key)
        if self._full or self._is_sampled(key):
            for shadow in self._watching:
                shadow.forget(key)

    def victim(self) -> Hashable:
        if self._full:
            self._filled = True
        return self._active.victim()

    def __len__(self) -> int:
        return len(self._active)

    def clear(self) -> None:
        self._reset()

    # -- internals -----------------------------------------------------------

    def _is_sampled(self, key: Hashable) -> bool:
        return hash((stable_key(key), _SAMPLE_SALT)) & _MASK32 < self._threshold

    def _sample_of(self, keys: Sequence[Hashable]) -> tuple[list[Hashable], np.ndarray]:
        """The requests of ``keys`` whose key is sampled, in order (int keys hashed with numpy), and
        how many of them are among the first ``n + 1`` requests, for each ``n``."""
        array: np.ndarray | None = None
        if keys and type(keys[0]) is int:
            try:
                array = np.asarray(keys)
            except (ValueError, TypeError):  # not one flat array of numbers: key by key
                array = None
        hashes = int_pair_hashes(array, _SAMPLE_SALT) if array is not None else None
        if hashes is None:
            taken = np.fromiter(map(self._is_sampled, keys), dtype=bool, count=len(keys))
            chosen = [key for key, take in zip(keys, taken.tolist(), strict=True) if take]
        else:
            taken = (hashes & np.uint64(_MASK32)) < np.uint64(self._threshold)
            chosen = array[taken].tolist()  # type: ignore[index]
        return chosen, np.cumsum(taken)

    def _observe(self, key: Hashable) -> None:
        """One request seen: the shadows replay it (if sampled), and a period may end."""
        full = self._full
        if full or self._is_sampled(key):
            if not full:
                self._sampled_requests += 1  # with whole shadows a period's requests are the period
            for shadow in self._watching:  # each shadow's request, inline (on every hit with whole shadows)
                if shadow.hit(key):
                    shadow.hits += 1
                else:
                    shadow.enter(key)
        self._left -= 1
        if not self._left:
            self._end_tick()

    def _end_tick(self) -> None:
        """A tick ended: the period's score if it was the last one, else a glance."""
        self._tick += 1
        last = self._tick == len(self._ticks)
        if not self._full:  # (sampled shadows: each scores its candidate, the cache aside)
            due = self._board.glance(
                [shadow.hits for shadow in self._watching], self._sampled_requests,
                active=self._active_index, closing=last,
            )
            if due is not None:
                self._due, self._due_to_glance = due, True
        if last:
            self._close_period()
            return
        self._left = self._ticks[self._tick]

    def _close_period(self) -> None:
        """Score the period just ended; a switch, if any, waits for the next request."""
        shadows = self._shadows
        hits = [
            self._active_hits if shadow is None else shadow.hits
            for shadow in shadows
        ]
        requests = self._period if self._full else self._sampled_requests
        for shadow in shadows:
            if shadow is not None:
                shadow.hits = 0
        self._active_hits = 0
        self._sampled_requests = 0
        self._tick = 0
        self._left = self._ticks[0]
        if not self._filled:
            if self._full:
                self._filled = len(self._active) >= self.capacity
            else:
                self._filled = all(shadow.size >= shadow.capacity for shadow in shadows if shadow is not None)
        self._due = self._board.close_period(hits, requests, active=self._active_index, full=self._filled)

    def _switch(self) -> None:
        """Hand the cache to the candidate the scoreboard chose, holding exactly the cache's keys."""
        index, self._due = self._due, None
        assert index is not None
        outgoing_policy = _candidate(self._active)
        keys = outgoing_policy.resident_keys()
        # After a glance the keys the outgoing policy held as reused are the ending phase's:
        # the incoming policy takes them as newcomers (the module's docstring).
        frequent = [] if self._due_to_glance else outgoing_policy.frequent_keys()
        self._due_to_glance = False
        if self._full:
            shadow = self._shadows[index]
            assert shadow is not None
            incoming = shadow.policy
            _adopt(incoming, keys, frequent)
            # The policy that drove the cache goes on beside it as the other shadow.
            outgoing = _Shadow(self._active)
            outgoing.size = len(self._active)
            self._shadows[self._active_index] = outgoing
            self._shadows[index] = None
            self._watching = self._watchers()
        else:
            incoming = self._new(index, self.capacity)
            _adopt(incoming, keys, frequent)
        self._active = incoming
        self._active_index = index
        self.switches += 1

    # -- the simulator's replay ---------------------------------------------

    def replay(
        self,
        keys: Sequence[Hashable],
        progress: Callable[[int], None] | None = None,
        chunk: int = 1 << 16,
    ) -> int:
        """Replay ``keys`` as "get, insert on miss"; return the hit count.

        Each policy in its own fast loop (compiled with numba where that
        pays), scored period by period: the same decisions as the hooks,
        tested hit for hit. Starts from, and leaves, this policy's state;
        ``progress`` gets the number of requests done about every ``chunk``.
        """
        if self._full:
            return self._replay_whole(keys, progress, chunk)
        return self._replay_sampled(keys, progress, chunk)

    def _replay_whole(self, keys: Sequence[Hashable], progress: Callable[[int], None] | None, chunk: int) -> int:
        """:meth:`replay` with whole shadows: the cache's own hits score its policy, period by period."""
        total = len(keys)
        hits = 0
        done = 0
        reported = 0
        while done < total:
            if self._due is not None:
                self._switch()
            end = min(total, done + self._left)
            part = keys[done:end]
            part_hits = _replay(self._active, part, total)
            hits += part_hits
            self._active_hits += part_hits
            for shadow in self._watching:
                shadow.replay(part, total)
            self._left -= len(part)
            done = end
            if not self._left:
                self._end_tick()
            if progress is not None and done - reported >= chunk:
                progress(done - reported)
                reported = done
        if progress is not None and done > reported:
            progress(done - reported)
        return hits

    def _replay_sampled(self, keys: Sequence[Hashable], progress: Callable[[int], None] | None, chunk: int) -> int:
        """:meth:`replay` with sampled shadows.

        Nothing the cache does moves the shadows or the scoreboard, so each
        shadow replays the whole sample in one call, cut at the periods'
        ends (its size at each end follows from its misses: a replay only
        adds keys until the shadow is full); the cache's own policy then
        replays in one go up to each switch, and ``progress`` follows it.
        An error meanwhile (a progress callback's) leaves the shadows ahead of
        the cache: :meth:`clear` it before using it again.
        """
        total = len(keys)
        if not total:
            return 0
        ends = []
        end, tick = self._left, self._tick
        while end < total:
            ends.append(end)
            tick = (tick + 1) % len(self._ticks)
            end += self._ticks[tick]
        ends.append(total)
        sample, taken = self._sample_of(keys)
        sample_ends = taken[np.asarray(ends) - 1].tolist()
        scored = [
            (shadow, shadow.capacity, _candidate(shadow.policy).replay_segments(sample, sample_ends, job=total))
            for shadow in self._watching
        ]
        hits = 0
        driven = 0  # requests the cache's own policy has replayed: it lags behind the periods
        start = sampled = 0
        for number, end in enumerate(ends):
            if self._due is not None:
                if driven < start:
                    hits += _replay(self._active, keys[driven:start], total, progress, chunk)
                    driven = start
                self._switch()
            requests = sample_ends[number] - sampled
            self._sampled_requests += requests
            for shadow, capacity, period_hits in scored:
                shadow.hits += period_hits[number]
                shadow.size = min(capacity, shadow.size + requests - period_hits[number])
            self._left -= end - start
            start, sampled = end, sample_ends[number]
            if not self._left:
                self._end_tick()
        if driven < total:
            hits += _replay(self._active, keys[driven:], total, progress, chunk)
        return hits
