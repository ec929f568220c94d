"""The default policy against LRU and the best reference policy, regime by regime.

The goal: at 0.1%, 1% and 10% of the distinct keys, the default is never
more than 0.5 point below LRU and within 1 point of the best online policy
(LRU, ARC, LIRS, 2Q, S3-FIFO, SIEVE). Each synthetic workload stresses one
regime: a shifting working set and recently touched keys reused
(recency), Zipf with scans (frequency and pollution), a mix that changes
phase, and a loop larger than the cache.
The shared real traces are checked the same way in test_reference_traces.py.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import pytest

from qcache.memory.policies import DEFAULT_POLICY
from qcache.memory.policies.adaptive import FREQUENCY_SIDE
from qcache.sim import (
    HotSpot,
    Loop,
    Phases,
    RecentReuse,
    ShiftingWorkingSet,
    TraceSource,
    Uniform,
    WithScans,
    Zipf,
    count_hits,
    materialize,
    resolve_sizes,
)

pytestmark = pytest.mark.slow

ONLINE = ("LRU", "ARC", "LIRS", "TWO_Q", "S3_FIFO", "SIEVE")
WORKLOADS: dict[str, Callable[[], TraceSource]] = {
    "shifting": lambda: ShiftingWorkingSet(requests=200_000, width=2000, rate=2, seed=2),
    "shifting-narrow": lambda: ShiftingWorkingSet(requests=200_000, width=120, rate=8, seed=1),
    "reuse": lambda: RecentReuse(requests=200_000, new_fraction=0.2, mean_gap=400, seed=4),
    "zipf+scans": lambda: WithScans(Zipf(keys=50_000, requests=200_000, exponent=0.9, seed=1), 2000, 1000),
    "phases": lambda: Phases((
        Zipf(keys=20_000, requests=100_000, exponent=0.9, seed=7),
        ShiftingWorkingSet(requests=100_000, width=200, rate=4, seed=7),
        Zipf(keys=20_000, requests=100_000, exponent=0.9, seed=8),
        Loop(keys=3000, requests=100_000),
    )),
    "loop": lambda: Loop(keys=5000, requests=200_000),
    # Held out from the tuning of the default's constants, to catch overfitting to the ones above:
    # reuse further back than the cache reaches, and a loop 1.7x a 10% cache after a Zipf phase.
    "reuse-far": lambda: RecentReuse(requests=200_000, new_fraction=0.3, mean_gap=1000, seed=9),
    "zipf-then-loop": lambda: Phases((
        Zipf(keys=20_000, requests=50_000, exponent=0.9, seed=3),
        Loop(keys=4000, requests=150_000),
    )),
}
# A wider sweep of the same generators, run after the default's constants
# were tuned on the workloads above (reuse at three new-key fractions and
# two gaps, three shifting sets, Zipf 0.6 and 1.1, a three-phase mix; 150k
# requests each). Only the variants with at least one miss are kept here,
# with the sweep's parameters and seeds; their misses are not yet met and
# are listed in KNOWN_MISSES. Four more were met since: reuse with 30% and
# 50% new keys 2000 requests back at 10% (69.25% against LRU's 70.07%,
# 49.03% against 50.11%) by the growth boost (WTinyLFUPolicy's
# boost_ratio), 69.76% and 49.76%; the shifting set at 1% (30.53% against
# LRU's 31.60%) and Zipf 1.1 at 0.1% (39.89% against S3-FIFO's 40.92%) by
# ghost lists of half a cache each (ghost_factor), 31.32% and 39.94%.
WIDER: dict[str, Callable[[], TraceSource]] = {
    "wide-reuse-0.1-100": lambda: RecentReuse(requests=150_000, new_fraction=0.1, mean_gap=100, seed=21),
    "wide-reuse-0.3-100": lambda: RecentReuse(requests=150_000, new_fraction=0.3, mean_gap=100, seed=21),
    "wide-reuse-0.3-2000": lambda: RecentReuse(requests=150_000, new_fraction=0.3, mean_gap=2000, seed=21),
    "wide-reuse-0.5-2000": lambda: RecentReuse(requests=150_000, new_fraction=0.5, mean_gap=2000, seed=21),
    "wide-shifting-300-16": lambda: ShiftingWorkingSet(requests=150_000, width=300, rate=16, seed=22),
    "wide-zipf-1.1": lambda: Zipf(keys=30_000, requests=150_000, exponent=1.1, seed=23),
}
# Held out from the choice of ADAPTIVE's settings: a sweep of 11 more workloads
# (reuse at three more mixes, Zipf 0.6, 0.8 and 1.0 with scans, a shifting set,
# loops of 2,000 and 12,000 keys, two new phase mixes; 150k requests each),
# on which ADAPTIVE never fell below W-TinyLFU by more than 0.01 point. Kept
# here are the ones it missed: a frequency-and-recency mix where S3-FIFO leads
# at 7 entries (in KNOWN_MISSES), and loops 10x the cache, where LIRS leads.
# The loops were met when ADAPTIVE's W-TinyLFU lost its doorkeeper
# (adaptive.FREQUENCY_SIDE); they were in view when that was found, so a
# second sweep of 11 workloads followed (reuse at three mixes, Zipf 0.7 with
# scans and 1.2, a hot spot, two shifting sets, a loop of 7,000 keys, two
# phase mixes). It did not find the change; it chose the growth gate of 0.7
# over 0.6, equal on the sweeps above (0.6 missed a shifting set at 0.1% there
# by 0.37 point). ADAPTIVE missed two of its 33 cases before that change and
# none after; kept here are those two.
HELD_OUT: dict[str, Callable[[], TraceSource]] = {
    "held-out-reuse-0.05-50": lambda: RecentReuse(requests=150_000, new_fraction=0.05, mean_gap=50, seed=33),
    "held-out-loop-2000": lambda: Loop(keys=2000, requests=150_000),
    "held-out-loop-12000": lambda: Loop(keys=12_000, requests=150_000),
    "second-reuse-0.2-5000": lambda: RecentReuse(requests=150_000, new_fraction=0.2, mean_gap=5000, seed=43),
    "second-loop-7000": lambda: Loop(keys=7000, requests=150_000),
    # A third sweep of 12 workloads (reuse at three mixes, Zipf 0.8 with repeated table scans,
    # Zipf 0.95, a hot spot, two shifting sets, a loop of 3,000 keys, two phase mixes, uniform;
    # 150k requests each), run when S3-FIFO was tried as a third candidate: the default missed 5 of
    # its 36 cases, 3 with two periods' patience and half a point's margin with whole shadows (in
    # KNOWN_MISSES); kept here are all five. It chose between the variants (S3-FIFO and LIRS as
    # candidates, the margins, the patience) beside a sweep of loops of 2,000 to 60,000 keys, which
    # found S3-FIFO's cost (its loop of 6,000 keys is kept here too).
    "third-reuse-0.08-30": lambda: RecentReuse(requests=150_000, new_fraction=0.08, mean_gap=30, seed=53),
    "third-reuse-0.4-800": lambda: RecentReuse(requests=150_000, new_fraction=0.4, mean_gap=800, seed=52),
    "loops-6000": lambda: Loop(keys=6000, requests=180_000),
    "third-shifting-60-3": lambda: ShiftingWorkingSet(requests=150_000, width=60, rate=3, seed=57),
    # A fourth sweep of 10 workloads, held out from the choice of S3-FIFO's size limit: of its 30
    # cases the default missed one before it (reuse at 30 entries, 43.11% against S3-FIFO's 45.05%)
    # and none after (44.48%).
    "fourth-reuse-0.2-150": lambda: RecentReuse(requests=150_000, new_fraction=0.2, mean_gap=150, seed=72),
    "third-phases-hot-loop-zipf": lambda: Phases((
        HotSpot(keys=10_000, requests=50_000, hot_fraction=0.2, hot_probability=0.8, seed=58),
        Loop(keys=1500, requests=50_000),
        Zipf(keys=10_000, requests=50_000, exponent=1.0, seed=58),
    )),
    "third-phases-reuse-zipfscan": lambda: Phases((
        RecentReuse(requests=75_000, new_fraction=0.25, mean_gap=500, seed=59),
        WithScans(Zipf(keys=20_000, requests=75_000, exponent=0.7, seed=59), 3000, 1500),
    )),
    # A fifth and a sixth sweep (13 and 10 workloads, phase mixes and large caches above all), run when
    # ADAPTIVE's glances were tried: they chose the glances' settings. Kept here are the workloads the
    # default missed or paid on, and the one a glance met (Zipf over new keys: 63.06% to 63.94%).
    "fifth-hotspot": lambda: HotSpot(keys=20_000, requests=150_000, hot_fraction=0.1, hot_probability=0.9, seed=85),
    "fifth-phases-zipf-loop-zipf": lambda: Phases((
        Zipf(keys=15_000, requests=50_000, exponent=0.9, seed=87),
        Loop(keys=1200, requests=40_000),
        Zipf(keys=15_000, requests=60_000, exponent=0.9, seed=88),
    )),
    "fifth-phases-loop-reuse": lambda: Phases((
        Loop(keys=3000, requests=60_000),
        RecentReuse(requests=90_000, new_fraction=0.2, mean_gap=200, seed=90),
    )),
    "fifth-phases-zipfscan-loop-zipf": lambda: Phases((
        WithScans(Zipf(keys=20_000, requests=70_000, exponent=0.9, seed=91), 2000, 1000),
        Loop(keys=800, requests=30_000),
        Zipf(keys=20_000, requests=50_000, exponent=0.9, seed=92),
    )),
    "fifth-phases-four": lambda: Phases((
        Zipf(keys=10_000, requests=40_000, exponent=1.1, seed=94),
        Loop(keys=2500, requests=30_000),
        ShiftingWorkingSet(requests=40_000, width=150, rate=6, seed=94),
        Zipf(keys=10_000, requests=40_000, exponent=0.8, seed=95),
    )),
    "sixth-zipf-then-new-keys": lambda: Phases((
        Zipf(keys=20_000, requests=75_000, exponent=0.9, seed=101),
        Zipf(keys=20_000, requests=75_000, exponent=0.9, seed=102),
    )),
    "sixth-shifting-3000-10": lambda: ShiftingWorkingSet(requests=200_000, width=3000, rate=10, seed=108),
    "sixth-zipf-1.2-scans": lambda: WithScans(Zipf(keys=50_000, requests=200_000, exponent=1.2, seed=112), 5000, 3000),
    # A seventh sweep of 8 workloads, written after the glances' settings were chosen: they changed one
    # case (a loop after a hot spot, 68.91% to 73.37%). Kept here are its miss and its switching cost.
    "seventh-hot-loop-hot": lambda: Phases((
        HotSpot(keys=12_000, requests=60_000, hot_fraction=0.15, hot_probability=0.85, seed=121),
        Loop(keys=1000, requests=40_000),
        HotSpot(keys=12_000, requests=50_000, hot_fraction=0.15, hot_probability=0.85, seed=122),
    )),
    "seventh-phases-shift-zipf": lambda: Phases((
        ShiftingWorkingSet(requests=60_000, width=300, rate=5, seed=127),
        Zipf(keys=15_000, requests=90_000, exponent=1.0, seed=127),
    )),
    # An eighth sweep of 10 workloads (phase mixes with loops above all), written after a glance's
    # switch stopped carrying the outgoing policy's reused keys: it gained on three loops after another
    # phase (one met: Zipf 0.7, a hot spot, then a loop, 67.83% to 68.70%) and lost on a shifting set
    # after a hot spot (77.85% to 76.66%). Kept here are its misses, its switching cost and the case met.
    # Two are loops a little larger than the cache after a recency phase, where only 2Q keeps much of
    # the loop: W-TinyLFU's window grows to the whole cache on its ghosts' evidence, as ARC's T1 does.
    # W-TinyLFU's flood guard (flood_ratio) then lifted the loop after a shifting set from 31.39% to
    # 49.90%, and a switching cost of a phase mix at 22 entries (20.19% to 20.44%) with it; the shrink
    # on a starved window (FREQUENCY_SIDE's shrink_ratio) met the loop before a Zipf phase (68.51% to
    # 74.12%, LIRS 73.65%) and a hot spot of the fifth sweep (53.17% to 53.31%, SIEVE 54.25%).
    "eighth-zipf-loop-zipf": lambda: Phases((
        Zipf(keys=12_000, requests=60_000, exponent=0.8, seed=131),
        Loop(keys=2000, requests=50_000),
        Zipf(keys=12_000, requests=40_000, exponent=0.8, seed=132),
    )),
    "eighth-hotspot-shift": lambda: Phases((
        HotSpot(keys=15_000, requests=60_000, hot_fraction=0.1, hot_probability=0.85, seed=133),
        ShiftingWorkingSet(requests=90_000, width=2500, rate=5, seed=133),
    )),
    "eighth-loop-zipf": lambda: Phases((
        Loop(keys=1800, requests=50_000),
        Zipf(keys=20_000, requests=100_000, exponent=1.0, seed=134),
    )),
    "eighth-reuse-loop-reuse": lambda: Phases((
        RecentReuse(requests=50_000, new_fraction=0.3, mean_gap=300, seed=136),
        Loop(keys=2500, requests=50_000),
        RecentReuse(requests=50_000, new_fraction=0.1, mean_gap=300, seed=137),
    )),
    "eighth-shift-loop": lambda: Phases((
        ShiftingWorkingSet(requests=70_000, width=1500, rate=3, seed=141),
        Loop(keys=3500, requests=80_000),
    )),
    "eighth-zipf-hot-loop": lambda: Phases((
        Zipf(keys=20_000, requests=50_000, exponent=0.7, seed=142),
        HotSpot(keys=10_000, requests=50_000, hot_fraction=0.2, hot_probability=0.8, seed=142),
        Loop(keys=1200, requests=50_000),
    )),
    # A ninth sweep of 12 workloads (Zipf 0.8 and 1.3, reuse, a shifting set, a hot spot, a loop 10x the
    # cache, scans over reuse, five phase mixes), written after W-TinyLFU's flood guard and ADAPTIVE's
    # shrink on a starved window were chosen: no miss in its 36 cases before or after them; they gained
    # 2.26 points on loop, Zipf, loop at 10% and lost at most 0.10 (scans over reuse at 0.1%). Kept here
    # are its switching costs, the same before and after.
    "ninth-shift-zipf": lambda: Phases((
        ShiftingWorkingSet(requests=70_000, width=1000, rate=2, seed=157),
        Zipf(keys=20_000, requests=80_000, exponent=0.9, seed=157),
    )),
    "ninth-reuse-loop": lambda: Phases((
        RecentReuse(requests=60_000, new_fraction=0.2, mean_gap=500, seed=158),
        Loop(keys=3000, requests=90_000),
    )),
    "ninth-loop-zipf-loop": lambda: Phases((
        Loop(keys=2200, requests=40_000),
        Zipf(keys=15_000, requests=60_000, exponent=0.9, seed=163),
        Loop(keys=2200, requests=50_000),
    )),
    # A tenth sweep of 12 workloads (two shifting sets, reuse, Zipf 0.85 with scans and Zipf 1.2, a hot
    # spot, six phase mixes), written after LRU became a candidate with sampled shadows: no miss in its
    # 36 cases before or after; LRU changed two (a hot spot, a 900-key loop and Zipf at 10%: 69.25% to
    # 69.67%; Zipf, a shifting set, Zipf at 10%: 74.95% to 74.87%). Kept here are its switching costs,
    # the same before and after.
    "tenth-zipf-0.85-scans": lambda: WithScans(
        Zipf(keys=40_000, requests=150_000, exponent=0.85, seed=174), 4000, 2000
    ),
    "tenth-zipf-shift-zipf": lambda: Phases((
        Zipf(keys=20_000, requests=50_000, exponent=1.0, seed=178),
        ShiftingWorkingSet(requests=50_000, width=1500, rate=5, seed=178),
        Zipf(keys=20_000, requests=50_000, exponent=1.0, seed=179),
    )),
    "tenth-scans-reuse-loop": lambda: Phases((
        WithScans(RecentReuse(requests=60_000, new_fraction=0.2, mean_gap=200, seed=182), 3000, 1500),
        Loop(keys=2800, requests=90_000),
    )),
    # An eleventh sweep of 12 workloads (two shifting sets, reuse at two mixes, loops of 1,600 and 25,000
    # keys, Zipf 0.7 with scans, five phase mixes), written after W-TinyLFU's window came to shrink on a
    # flood's window ghosts: it moved no case by more than 0.23 point (a phase mix at 34 entries), and
    # found five misses and two switching costs, the same with and without that change. Kept here are those.
    "eleventh-shifting-2500-15": lambda: ShiftingWorkingSet(requests=150_000, width=2500, rate=15, seed=192),
    "eleventh-reuse-0.5-3000": lambda: RecentReuse(requests=150_000, new_fraction=0.5, mean_gap=3000, seed=193),
    "eleventh-loop-1600": lambda: Loop(keys=1600, requests=150_000),
    "eleventh-loop-25000": lambda: Loop(keys=25_000, requests=150_000),
    "eleventh-zipf-0.7-scans": lambda: WithScans(
        Zipf(keys=30_000, requests=150_000, exponent=0.7, seed=195), 1500, 800
    ),
    "eleventh-reuse-loop-zipf": lambda: Phases((
        RecentReuse(requests=50_000, new_fraction=0.3, mean_gap=800, seed=197),
        Loop(keys=1800, requests=50_000),
        Zipf(keys=12_000, requests=50_000, exponent=0.9, seed=197),
    )),
    # A twelfth sweep of 12 workloads (two shifting sets, reuse at two mixes, Zipf 0.75 with scans and
    # Zipf 1.05, a hot spot, a loop of 4,500 keys, four phase mixes), written after ADAPTIVE's W-TinyLFU
    # came to rotate its duels' winners (WTinyLFUPolicy's rotate_probation), run with and without it:
    # three misses before, two after (a shifting set, Zipf with scans, then uniform keys at 10% was met:
    # 61.37% to 61.71%, ARC 62.62%); it gained up to 3.16 points (a loop between Zipf and reuse at 10%)
    # and lost at most 0.18 (reuse, loop, shifting set at 1%). Kept here are its two misses, the case
    # met, and its switching costs (three, there without it too; one met since).
    "twelfth-hot-shift-loop": lambda: Phases((
        HotSpot(keys=15_000, requests=50_000, hot_fraction=0.1, hot_probability=0.9, seed=208),
        ShiftingWorkingSet(requests=50_000, width=1000, rate=4, seed=208),
        Loop(keys=1700, requests=50_000),
    )),
    "twelfth-reuse-loop-shift": lambda: Phases((
        RecentReuse(requests=50_000, new_fraction=0.25, mean_gap=400, seed=209),
        Loop(keys=2200, requests=50_000),
        ShiftingWorkingSet(requests=50_000, width=600, rate=3, seed=209),
    )),
    "twelfth-shift-zipfscan-uniform": lambda: Phases((
        ShiftingWorkingSet(requests=50_000, width=2000, rate=5, seed=211),
        WithScans(Zipf(keys=20_000, requests=60_000, exponent=0.9, seed=211), 2000, 1000),
        Uniform(keys=5000, requests=40_000, seed=211),
    )),
    # A thirteenth sweep of 10 workloads (loops after and before recency phases, a shifting set, reuse,
    # Zipf 0.95 with scans, a hot spot then a loop, a loop of 9,000 keys, a shifting set, reuse, shifting
    # set), written after ADAPTIVE's W-TinyLFU came to count far returns (WTinyLFUPolicy's far_ratio),
    # run with and without them: 6.5 points gained in all (reuse then a loop at 10%, 41.31% to 48.74%),
    # at most 0.27 lost, and one case moved over the line (reuse then the loop at 1%). Kept here are that
    # miss and the switching costs, all three there without far returns too.
    "thirteenth-shift-loop": lambda: Phases((
        ShiftingWorkingSet(requests=60_000, width=1200, rate=4, seed=221), Loop(keys=2600, requests=60_000),
    )),
    "thirteenth-reuse-loop": lambda: Phases((
        RecentReuse(requests=50_000, new_fraction=0.2, mean_gap=600, seed=222), Loop(keys=4000, requests=70_000),
    )),
    "thirteenth-loop-shift": lambda: Phases((
        Loop(keys=3000, requests=50_000), ShiftingWorkingSet(requests=70_000, width=1500, rate=3, seed=223),
    )),
    "thirteenth-shift-reuse-shift": lambda: Phases((
        ShiftingWorkingSet(requests=50_000, width=900, rate=5, seed=230),
        RecentReuse(requests=50_000, new_fraction=0.25, mean_gap=500, seed=230),
        ShiftingWorkingSet(requests=50_000, width=2500, rate=2, seed=231),
    )),
    # A fourteenth sweep of 12 workloads (loops after Zipf, Zipf with scans, uniform keys and reuse; a
    # 3,000-key loop; a loop between shifting sets; reuse; Zipf 1.0 with scans; and four mixes whose last
    # phase shares the first one's keys: a hot spot, Zipf or reuse around a loop, Zipf around a hot spot),
    # written after ADAPTIVE's W-TinyLFU came to fade its sketch when far returns end the window's shrink
    # (WTinyLFUPolicy's far_fade), run with and without it: 3.68 points gained in all (reuse then a
    # 4,500-key loop at 10%, 48.76% to 50.62%), no miss either way, at most 0.22 lost (the loop at 10%,
    # 9.67% to 9.45%, LIRS 9.70%). Kept here are that loop and the sweep's switching cost, there without
    # the fade too.
    "fourteenth-reuse-loop-4500": lambda: Phases((
        RecentReuse(requests=60_000, new_fraction=0.25, mean_gap=400, seed=304), Loop(keys=4500, requests=90_000),
    )),
    "fourteenth-loop-3000": lambda: Loop(keys=3000, requests=150_000),
    # A fifteenth sweep of 12 workloads (reuse at two mixes, two shifting sets, Zipf 0.75 with scans,
    # Zipf 1.05, a hot spot then a shifting set, a shifting set then Zipf, reuse around Zipf with scans,
    # reuse then a 5,000-key loop, uniform keys then a shifting set, and Zipf, a loop, a shifting set),
    # written after two warm periods were chosen for sampled shadows (adaptive.WARM_PERIODS; three
    # before), run both ways: 0.40 point gained, one miss met (the shifting set of 3,500 keys at 10%:
    # 55.55% to 56.13%, LRU 56.45%), at most 0.18 lost (the hot spot then a shifting set at 10%, 74.93%
    # to 74.75%, ARC 73.78%). Two warm periods for whole shadows too gained 0.68 more there, with nothing
    # lost, and became the choice. Three cases missed either way, all with whole shadows, where ARC
    # (or W-TinyLFU) drives and LRU is no candidate. Kept here are those, the met miss, and the costs.
    "fifteenth-shifting-3500-8": lambda: ShiftingWorkingSet(requests=150_000, width=3500, rate=8, seed=403),
    "fifteenth-shifting-1800-20": lambda: ShiftingWorkingSet(requests=150_000, width=1800, rate=20, seed=404),
    "fifteenth-reuse-zipfscan-reuse": lambda: Phases((
        RecentReuse(requests=50_000, new_fraction=0.3, mean_gap=800, seed=409),
        WithScans(Zipf(keys=15_000, requests=50_000, exponent=0.85, seed=409), 2000, 800),
        RecentReuse(requests=50_000, new_fraction=0.2, mean_gap=1200, seed=410),
    )),
    "fifteenth-reuse-loop-5000": lambda: Phases((
        RecentReuse(requests=60_000, new_fraction=0.3, mean_gap=1000, seed=411), Loop(keys=5000, requests=90_000),
    )),
    "fifteenth-uniform-shift": lambda: Phases((
        Uniform(keys=8000, requests=50_000, seed=412),
        ShiftingWorkingSet(requests=100_000, width=3000, rate=5, seed=412),
    )),
    # A sixteenth sweep of 12 workloads (reuse at two mixes, two shifting sets, Zipf 0.85 with scans, a
    # hot spot, a 2,500-key loop, Zipf then reuse, reuse then a shifting set, a loop then Zipf, a hot
    # spot between shifting sets, uniform keys then Zipf with scans), written after two warm periods
    # became the choice everywhere, run both ways: 0.40 point gained, no miss met or made, at most 0.37
    # lost (the loop then Zipf at 190 entries, a switching cost either way). Kept here are the
    # workloads that miss or pay either way.
    "sixteenth-reuse-shift": lambda: Phases((
        RecentReuse(requests=60_000, new_fraction=0.2, mean_gap=300, seed=508),
        ShiftingWorkingSet(requests=90_000, width=1500, rate=8, seed=508),
    )),
    "sixteenth-loop-zipf": lambda: Phases((
        Loop(keys=1800, requests=50_000), Zipf(keys=20_000, requests=100_000, exponent=0.8, seed=509),
    )),
    "sixteenth-uniform-zipfscan": lambda: Phases((
        Uniform(keys=3000, requests=40_000, seed=512),
        WithScans(Zipf(keys=25_000, requests=110_000, exponent=0.9, seed=512), 2500, 1500),
    )),
    # A seventeenth sweep of 12 workloads (Zipf, reuse, Zipf; reuse then Zipf 1.0; Zipf 0.8 with scans
    # then reuse; a hot spot then reuse; loop, reuse, loop; shifting set, Zipf, shifting set; reuse 60
    # back; Zipf 0.7 with scans; uniform keys then reuse; a hot spot then a 900-key loop; reuse then
    # Zipf with scans; a narrow shifting set), written after a lead of ten points in a single period
    # came to switch whole shadows at once (adaptive.SUDDEN_MARGIN), run both ways: it changed no case.
    # Two of its cases miss either way, both with whole shadows; kept here.
    "seventeenth-hot-loop": lambda: Phases((
        HotSpot(keys=10_000, requests=60_000, hot_fraction=0.2, hot_probability=0.8, seed=612),
        Loop(keys=900, requests=90_000),
    )),
    "seventeenth-shifting-200-10": lambda: ShiftingWorkingSet(requests=150_000, width=200, rate=10, seed=614),
}
ALL_WORKLOADS = {**WORKLOADS, **WIDER, **HELD_OUT}
# Measured misses of the goal, kept visible (strict: they fail once fixed).
# Three more, all recency-dominated reuse, were met when the default became
# ADAPTIVE (W-TinyLFU, or ARC once a shadow of ARC is a point ahead): reuse
# with 30% new keys 100 requests back at 0.1% (46.85% against ARC's 48.31%,
# now 47.96%), 2000 back at 1% (32.44% against 35.37%, now 34.84%), and 50%
# new keys 2000 back at 1% (23.71% against 25.19%, now 24.88%). Then four
# when ADAPTIVE's W-TinyLFU lost its doorkeeper and gated its window's growth
# at 0.7 (adaptive.FREQUENCY_SIDE): the loops of 2,000 and 12,000 keys at 10%
# (7.52% and 7.31% against LIRS's 9.77% and 9.50%, now 9.59% and 8.92%), and
# of the second held-out sweep reuse with 20% new keys 5000 back at 1%
# (31.01% against S3-FIFO's 32.03%, now 31.64%) and the loop of 7,000 keys at
# 10% (7.84% against LIRS's 9.70%, now 9.27%).
# The last miss of W-TinyLFU itself on the workloads above was reuse at 0.1%
# (40 entries): 28.03% against S3-FIFO's 30.02%. Both ghost lists were hit
# about as often there (11% and 13% of requests), the window wandered from 1
# to 30 entries, and every growth evicted main's keys without a duel, which
# came back as main-ghost hits (13% of requests, 4% at any fixed window): a
# fixed window of 1 to 4 entries reaches 29.7-29.9%. Gating the window's
# growth on its hits per entry (at least 0.3x main's, WTinyLFUPolicy's
# gate_ratio) gives 29.21%.
# Measured and not kept before that: smaller ghost steps or lists
# (28.6-28.9%), ghost hits weighted by their age, counted only near the
# top of their list or within a segment's size (ARC's list bounds), ghost
# steps gated by the climber (28.0-28.5%, or the shifting sets fell under
# LRU), steps scaled down or skipped while both ghost lists are hit alike
# (22-27%), and growth that duels main's LRU key (23%).
# Two more when S3-FIFO became a third candidate in caches of up to 500
# entries (adaptive.SMALL_CACHE): reuse with 10% new keys 100 back at 15
# entries (58.68% against S3-FIFO's 60.17%, now 59.71%) and with 5% new keys
# 50 back at 7 entries (76.56% against 77.68%, now 77.31%). As a candidate at
# every size it also missed loops of 6,000 and 60,000 keys at 10% (8.17% and
# 7.95%, against its W-TinyLFU's 9.07% and 9.30% and LIRS's 9.57%).
# Four more when ADAPTIVE's W-TinyLFU came to rotate its duels' winners to probation's back
# (FREQUENCY_SIDE's rotate_probation): a loop after a hot spot at 1,600 entries (74.17% against LIRS's
# 75.27%, now 74.40%), the loop after Zipf with scans at 6,077 (57.98% against ARC's 60.93%, now 61.77%),
# the loop 10x the cache at 160 (8.17% against LIRS's 9.86%, now 9.72%) and Zipf 0.7 with scans at
# 10,743 (38.06% against LIRS's 39.46%, now 38.76%). It moved three cases over the line (below).
# Two more when it came to count far returns (FREQUENCY_SIDE's far_ratio): the loop after a shifting set
# at 2,634 entries (53.21% against 2Q's 61.28%, now 63.08%) and the loop 10x the cache at 2,500 (6.97%
# against LIRS's 8.25%, now 7.57%). Two more when far returns came to fade the sketch (far_fade): the
# loop after recent reuse at 2,248 entries (73.77% against 2Q's 78.06%, now 78.25%) and reuse then a
# 4,000-key loop at 140 (20.18% against S3-FIFO's 21.25%, now 20.31%). Three more when the scoreboard
# came to wait two warm periods, not three (adaptive.WARM_PERIODS): the narrow shifting set at 25
# entries (20.02% against LRU's 20.57%, now 20.09%), the wide one at 96 (31.07% against 31.60%, now
# 31.21%) and reuse with 50% new keys 3000 back at 7,478 (49.24% against 49.75%, now 49.37%). One
# more when a lead of ten points in a single period came to switch whole shadows at once
# (adaptive.SUDDEN_MARGIN): reuse, Zipf with scans, reuse at 558 entries (49.21% against ARC's 50.27%,
# now 49.50%).
# The misses left (default's hit ratio against the reference it misses):
KNOWN_MISSES: dict[tuple[str, int], str] = {
    ("third-shifting-60-3", 0): "48 entries: 59.60% vs LRU 60.37% (0.27 point beyond half a point; every other"
    " policy is further below LRU: its W-TinyLFU 59.60%, ARC 59.40%; 59.78% before duels' winners rotated)",
    ("third-phases-reuse-zipfscan", 2): "7,338 entries: 50.18% vs ARC 51.25% (LRU 49.10%): LRU's shadow leads"
    " W-TinyLFU's by a point at the phase change and takes the cache, which then goes to ARC a few periods"
    " later (50.26% before LRU was a candidate, 0.01 point inside the line)",
    ("fifth-phases-zipf-loop-zipf", 2): "2,187 entries: 71.36% vs LIRS 72.56% (LRU 71.16%, ARC 72.49%): a glance"
    " hands the 1,200-key loop to LRU, whose shadow holds it a pass sooner than ARC's, and the last Zipf phase"
    " goes to ARC only some periods in (71.84% before LRU was a candidate, when ARC took the loop)",
    ("tenth-scans-reuse-loop", 2): "4,506 entries: 74.44% vs LRU and 2Q 74.97% (its W-TinyLFU 74.44%): 0.03 point"
    " beyond half a point; at the loop's start a glance hands the cache to LRU (74.92% before duels' winners"
    " rotated, when W-TinyLFU's miniature kept up and no glance came; 73.21% while a switch handed W-TinyLFU's"
    " window over first, and LRU evicted the loop's first pass before its second came)",
    ("eleventh-shifting-2500-15", 2): "1,217 entries: 46.33% vs LRU 47.35% (ARC 46.60%): ARC takes over at the"
    " third period (46.15% when the fourth), and LRU's shadow then leads it by up to 0.8 point, never by the"
    " switching margin of 1",
    ("twelfth-hot-shift-loop", 2): "2,011 entries: 84.46% vs LRU 85.39% (ARC 85.15%, its W-TinyLFU 83.88%)",
    ("twelfth-reuse-loop-shift", 2): "3,065 entries: 78.70% vs LRU and 2Q 79.57% (its W-TinyLFU 78.70%; 77.90%"
    " while a switch handed W-TinyLFU's window over first)",
    ("fifteenth-shifting-1800-20", 2): "912 entries: 48.66% vs LRU 49.35% (ARC 49.03%, its W-TinyLFU 46.59%):"
    " whole shadows, so LRU is no candidate; W-TinyLFU drives the first periods 2-4 points under LRU, then"
    " ARC 0.1-1.2 under it (48.41% with three warm periods)",
    ("fifteenth-uniform-shift", 1): "297 entries: 7.19% vs LRU 7.80% (ARC 7.68%, its W-TinyLFU 6.51%)",
    ("sixteenth-reuse-shift", 1): "244 entries: 39.75% vs LRU 40.29% (ARC 40.03%, its W-TinyLFU 39.43%)",
    ("sixteenth-uniform-zipfscan", 2): "8,744 entries: 51.03% vs LIRS 53.33% (ARC 52.83%, its W-TinyLFU"
    " 52.35%): LRU leads at the start of Zipf with scans and takes the cache, then ARC does, but an ARC"
    " built over LRU's keys (all newcomers, no ghosts) trails ARC alone by 2-4 points for 100k requests",
    ("seventeenth-hot-loop", 2): "908 entries: 69.35% vs LIRS 72.65% (ARC 72.52%, LRU 70.75%, its W-TinyLFU"
    " 69.35%): in the first period of a 900-key loop that fits the cache W-TinyLFU hits 29% (LRU 91%, ARC"
    " 82%); whole shadows switch at a period's end only, and W-TinyLFU holds the loop by then too",
    ("seventeenth-shifting-200-10", 1): "152 entries: 67.08% vs LRU 70.08% (ARC 68.27%, its W-TinyLFU 63.34%):"
    " a narrow shifting set; with whole shadows LRU is no candidate, and ARC trails it by 1-2.5 points a period",
}


@cache
def keys_of(workload: str) -> list[object]:
    return list(materialize(ALL_WORKLOADS[workload]()).keys)


@cache
def ratio(workload: str, policy: str, index: int, *, frequency_side: bool = False) -> float:
    """Hit ratio (%); ``frequency_side``: W-TinyLFU built as ADAPTIVE builds it."""
    keys = keys_of(workload)
    size = resolve_sizes("0.1%,1%,10%", len(set(keys)))[index]
    options = FREQUENCY_SIDE if frequency_side else None
    return 100.0 * count_hits(policy, keys, size, options=options) / len(keys)


CASES = [
    pytest.param(name, index, marks=pytest.mark.xfail(reason=KNOWN_MISSES[(name, index)], strict=True))
    if (name, index) in KNOWN_MISSES else (name, index)
    for name in ALL_WORKLOADS for index in range(3)
]


@pytest.mark.parametrize(("workload", "index"), CASES)
def test_default_is_near_the_best_online_policy_and_never_far_below_lru(workload: str, index: int) -> None:
    default = ratio(workload, DEFAULT_POLICY, index)
    best_name = max(ONLINE, key=lambda name: ratio(workload, name, index))
    best = ratio(workload, best_name, index)
    lru = ratio(workload, "LRU", index)
    assert default >= lru - 0.5, f"{default:.2f} vs LRU {lru:.2f}"
    assert default >= best - 1.0, f"{default:.2f} vs {best_name} {best:.2f}"
    assert default <= ratio(workload, "BELADY", index)


# Where a switch costs: ARC's shadow led W-TinyLFU's by more than the margin for a while, and
# the cache lost more on its way to ARC and back than ARC gained. Measured and not kept: a
# larger margin (1.25 or 1.5 points), a slower decay (0.9) or 5 warm periods lose more here
# (30.94%) or miss the goal elsewhere (the shifting sets).
# Met when duels' winners came to rotate: Zipf 1.2 with scans at 13,528 entries, a loop then Zipf at 151,
# loop, Zipf, loop at 152, Zipf 0.85 with scans at 10,346, and the loop 10x the cache at 160. Three more
# when a switch from W-TinyLFU came to hand over its window's keys last (WTinyLFUPolicy.resident_keys),
# as the newest: Zipf, shifting set, Zipf at 2,972 (74.83% to 75.05%, against its W-TinyLFU's 74.96%),
# scans over reuse then a loop at 4,506 (73.21% to 74.44%, 74.44%) and reuse, loop, shifting set at 3,065
# (77.90% to 78.70%, 78.70%). One more when it came to count far returns: reuse with 20% new keys 5000
# back at 301 entries (32.02% to 32.59%, against its W-TinyLFU's 32.59%); two warm periods brought it
# back (32.13%). Those met two: reuse then a 4,000-key loop at 140 entries (20.31% to 20.58%, against its
# W-TinyLFU's 20.51%) and a loop then a shifting set at 26 (0.79% to 0.80%, 0.90%, inside 0.1 point).
SWITCHING_COSTS: dict[tuple[str, int], str] = {
    ("second-reuse-0.2-5000", 0): "30 entries: 16.06% vs its W-TinyLFU alone 16.42% (S3-FIFO 16.51%): S3-FIFO"
    " leads as the hit ratio falls in the first periods and takes the cache (not so with three warm periods)",
    ("second-reuse-0.2-5000", 1): "301 entries: 32.13% vs its W-TinyLFU alone 32.59% (S3-FIFO 32.03%), as at 30"
    " entries (32.59% with three warm periods)",
    ("fifth-phases-loop-reuse", 1): "210 entries: 48.54% vs its W-TinyLFU alone 49.37% (LRU 47.31%; 48.87% with"
    " three warm periods)",
    ("seventh-phases-shift-zipf", 0): "23 entries: 23.32% vs its W-TinyLFU alone 23.64% (S3-FIFO 23.46%)",
    ("ninth-shift-zipf", 0): "45 entries: 16.55% vs its W-TinyLFU alone 16.76% (both 16.81% before duels' winners"
    " rotated)",
    ("ninth-shift-zipf", 1): "448 entries: 43.15% vs its W-TinyLFU alone 43.48% (ARC 43.17%)",
    ("ninth-reuse-loop", 1): "150 entries: 22.05% vs its W-TinyLFU alone 22.80% (ARC 22.32%)",
    ("tenth-zipf-shift-zipf", 1): "297 entries: 43.48% vs its W-TinyLFU alone 43.93% (ARC 43.61%)",
    ("tenth-scans-reuse-loop", 1): "451 entries: 31.72% vs its W-TinyLFU alone 32.71% (ARC 26.25%), in the loop of"
    " 2,800 keys (30.77% before a single period's lead switched at once, 29.89% before far returns)",
    ("eleventh-reuse-loop-zipf", 1): "256 entries: 31.39% vs its W-TinyLFU alone 32.31% (ARC 29.28%; 30.65%"
    " before a single period's lead switched at once)",
    ("twelfth-hot-shift-loop", 1): "201 entries: 12.17% vs its W-TinyLFU alone 13.22% (ARC 10.47%)",
    ("twelfth-shift-zipfscan-uniform", 2): "5,875 entries: 61.68% vs its W-TinyLFU alone 62.04% (ARC 62.62%)",
    ("thirteenth-shift-loop", 1): "180 entries: 8.16% vs its W-TinyLFU alone 9.09% (LRU 7.35%; 8.38% against 9.58%"
    " before far returns)",
    ("thirteenth-shift-reuse-shift", 0): "45 entries: 9.75% vs its W-TinyLFU alone 9.95% (S3-FIFO 10.05%)",
    ("fourteenth-reuse-loop-4500", 1): "194 entries: 23.52% vs its W-TinyLFU alone 24.30% (ARC 23.32%), a"
    " loop of 4,500 keys after recent reuse (23.48% before far returns faded the sketch)",
    ("fifteenth-reuse-zipfscan-reuse", 2): "5,584 entries: 62.47% vs its W-TinyLFU alone 62.67% (ARC 62.83%)",
    ("sixteenth-loop-zipf", 1): "190 entries: 21.13% vs its W-TinyLFU alone 21.99% (LIRS 21.91%; 21.50% with"
    " three warm periods)",
    ("sixteenth-loop-zipf", 2): "1,904 entries: 64.62% vs its W-TinyLFU alone 65.68% (S3-FIFO 65.43%)",
    ("sixteenth-uniform-zipfscan", 1): "874 entries: 31.46% vs its W-TinyLFU alone 31.88% (S3-FIFO 31.97%)",
    ("sixteenth-uniform-zipfscan", 2): "8,744 entries: 51.03% vs its W-TinyLFU alone 52.35% (LIRS 53.33%): the"
    " largest cost, and a known miss too",
}


@pytest.mark.parametrize(
    ("workload", "index"),
    [
        pytest.param(name, index, marks=pytest.mark.xfail(reason=SWITCHING_COSTS[(name, index)], strict=True))
        if (name, index) in SWITCHING_COSTS else (name, index)
        for name in ALL_WORKLOADS for index in range(3)
    ],
)
def test_the_default_never_pays_for_its_shadows(workload: str, index: int) -> None:
    """ADAPTIVE switches away from its W-TinyLFU only to gain: nowhere here is it 0.1 point under it."""
    assert DEFAULT_POLICY == "ADAPTIVE"
    assert ratio(workload, DEFAULT_POLICY, index) >= ratio(workload, "W_TINYLFU", index, frequency_side=True) - 0.1
