"""W-TinyLFU (Einziger, Friedman and Manes, 2017) with a self-sizing admission window."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

from qcache.memory.policies.base import EvictionPolicy
from qcache.memory.policies.climber import HillClimber
from qcache.memory.policies.registry import register_policy
from qcache.memory.policies.sketch import FrequencySketch, Slots

_WINDOW, _PROBATION, _PROTECTED = 0, 1, 2
_NONE = object()


@register_policy("W_TINYLFU")
class WTinyLFUPolicy(EvictionPolicy):
    """Recency in a small window, frequency in a large main area, and a gate between them.

    New keys enter an LRU *window*. A key pushed out of the window becomes a
    *candidate* for the main area, a segmented LRU (*probation*, then
    *protected* once hit there). When the cache is full the candidate is
    compared with probation's LRU key, the *victim*, using a frequency
    sketch (:class:`FrequencySketch`) of the recent past: the candidate gets
    in only if it was requested more often. That filter keeps one-hit
    wonders and scans out of main, which is where plain LRU loses.

    Frequency-biased admission hurts recency-heavy workloads (a burst of new
    keys that will each be reused a few times soon), so with ``adaptive``
    the window size is tuned at run time by a :class:`HillClimber`, as
    Caffeine does: a larger window behaves more like LRU, a smaller one more
    like LFU. Capacity moves between the window and the protected segment.

    Defaults are Caffeine's (sample period 10x capacity, step decay 0.98,
    restart threshold 0.05, SLRU with 80% protected, 4-bit sketch aged every
    10x capacity with a doorkeeper) except two, tuned on real traces:

    * ``window_fraction=0.25`` (Caffeine: 0.01). Sweeping fixed windows on
      the cache2k web07 and ARC OLTP traces puts the best window between 20%
      and 40% at 0.1%, 1% and 10% of their footprint. On skewed synthetic
      workloads (Zipf, with or without scans) a fixed 25% window costs 0.7
      to 1.4 points against 1%, and the climber wins part of that back; on
      a recency-dominated one a fixed 1% window loses over 30 points, and
      starting the climber at 1% still loses 10 at large sizes, where a
      sample (10x capacity) is long and the workload may end first.
    * ``step_fraction=0.03`` (Caffeine: 0.0625). Per-sample hit rates on
      real traces swing by tens of points with the workload's phases, far
      more than a window change moves them, so each comparison is mostly
      noise and large steps make the window wander far from good sizes.
      Smaller steps keep that random walk near where it started, while a
      steady signal (a stationary workload) still moves the window all the
      way, as the tests check.

    ``seed`` salts the sketch's hash; ``adaptive=False`` freezes the window.
    """

    def __init__(
        self,
        capacity: int,
        *,
        window_fraction: float = 0.25,
        protected_fraction: float = 0.80,
        adaptive: bool = True,
        sample_factor: float = 10.0,
        step_fraction: float = 0.03,
        step_decay: float = 0.98,
        restart_threshold: float = 0.05,
        start_increasing: bool = False,
        sketch_sample_factor: float = 10.0,
        sketch_width_factor: int = 4,
        doorkeeper: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__(capacity)
        if not 0.0 <= window_fraction < 1.0:
            raise ValueError(f"window_fraction must be in [0, 1), got {window_fraction!r}")
        if not 0.0 <= protected_fraction <= 1.0:
            raise ValueError(f"protected_fraction must be in [0, 1], got {protected_fraction!r}")
        main = int(capacity * (1.0 - window_fraction))
        self._window_max = max(1, capacity - main)
        self._protected_max = int((capacity - self._window_max) * protected_fraction)
        self._window_target = float(self._window_max)
        self._sketch = FrequencySketch(
            capacity,
            sample_factor=sketch_sample_factor,
            width_factor=sketch_width_factor,
            doorkeeper=doorkeeper,
            seed=seed,
        )
        self._climber: HillClimber | None = (
            HillClimber(
                capacity,
                sample_factor=sample_factor,
                step_fraction=step_fraction,
                step_decay=step_decay,
                restart_threshold=restart_threshold,
                start_increasing=start_increasing,
            )
            if adaptive and capacity > 1
            else None
        )
        self._sample_size = self._climber.sample_size if self._climber else 0
        self._sample_hits = 0
        self._sample_count = 0
        self._window: OrderedDict[Hashable, None] = OrderedDict()
        self._probation: OrderedDict[Hashable, None] = OrderedDict()
        self._protected: OrderedDict[Hashable, None] = OrderedDict()
        self._where: dict[Hashable, int] = {}
        # Sketch positions of resident keys: hits and admission duels then skip hashing.
        self._slots: dict[Hashable, Slots] = {}
        self._last_missed: object = _NONE
        self._last_slots: Slots | None = None

    # -- introspection (tests, notebooks) ------------------------------------

    @property
    def window_size(self) -> int:
        """Current maximum of the admission window (it moves when adaptive)."""
        return self._window_max

    @property
    def protected_size(self) -> int:
        """Current maximum of the protected segment."""
        return self._protected_max

    def frequency(self, key: Hashable) -> int:
        """The sketch's estimate of ``key``'s recent popularity."""
        return self._sketch.frequency(key)

    # -- the contract --------------------------------------------------------

    def on_miss(self, key: Hashable) -> None:
        slots = self._sketch.slots(key)
        self._sketch.increment_at(slots)
        self._last_missed = key
        self._last_slots = slots
        if self._climber is not None and len(self._where) >= self.capacity:
            self._sample_count += 1
            if self._sample_count >= self._sample_size:
                self._climb()

    def on_insert(self, key: Hashable) -> None:
        if key != self._last_missed:
            # Inserted without a lookup first (a plain set): still one request.
            self.on_miss(key)
        self._last_missed = _NONE
        self._slots[key] = self._last_slots  # type: ignore[assignment]  # on_miss, just above, set it
        self._window[key] = None
        self._where[key] = _WINDOW

    def on_access(self, key: Hashable) -> None:
        self._sketch.increment_at(self._slots[key])
        region = self._where[key]
        if region == _PROTECTED:
            self._protected.move_to_end(key)
        elif region == _WINDOW:
            self._window.move_to_end(key)
        else:
            del self._probation[key]
            self._protected[key] = None
            self._where[key] = _PROTECTED
            if len(self._protected) > self._protected_max:
                self._demote_protected()
        if self._climber is not None and len(self._where) >= self.capacity:
            self._sample_hits += 1
            self._sample_count += 1
            if self._sample_count >= self._sample_size:
                self._climb()

    def on_remove(self, key: Hashable) -> None:
        region = self._where.pop(key)
        del self._slots[key]
        if region == _WINDOW:
            del self._window[key]
        elif region == _PROBATION:
            del self._probation[key]
        else:
            del self._protected[key]

    def victim(self) -> Hashable:
        if not self._where:
            raise KeyError("victim() on an empty W_TINYLFU policy")
        window, probation, where = self._window, self._probation, self._where
        candidate: object = _NONE
        while len(window) > self._window_max:
            candidate, _ = window.popitem(last=False)
            probation[candidate] = None
            where[candidate] = _PROBATION
        if probation:
            evict = next(iter(probation))
            if candidate is not _NONE and candidate != evict:
                slots = self._slots
                if not self._sketch.admits(slots[candidate], slots[evict]):
                    evict = candidate
            del probation[evict]
        elif self._protected:
            evict, _ = self._protected.popitem(last=False)
        else:
            evict, _ = window.popitem(last=False)
        del where[evict]
        del self._slots[evict]
        return evict

    def __len__(self) -> int:
        return len(self._where)

    def clear(self) -> None:
        self._window.clear()
        self._probation.clear()
        self._protected.clear()
        self._where.clear()
        self._slots.clear()
        self._sketch.clear()
        self._sample_hits = self._sample_count = 0
        self._last_missed = _NONE

    # -- internals -----------------------------------------------------------

    def _demote_protected(self) -> None:
        """Move protected's LRU key to probation's MRU end."""
        key, _ = self._protected.popitem(last=False)
        self._probation[key] = None
        self._where[key] = _PROBATION

    def _climb(self) -> None:
        """End of a sample: let the climber resize the window."""
        assert self._climber is not None
        delta = self._climber.adjust(self._sample_hits / self._sample_count)
        self._sample_hits = self._sample_count = 0
        upper = self._window_max + self._protected_max
        self._window_target = min(max(self._window_target + delta, 1.0), float(upper))
        change = int(round(self._window_target)) - self._window_max
        if change > 0:
            self._grow_window(change)
        elif change < 0:
            self._shrink_window(-change)

    def _grow_window(self, amount: int) -> None:
        """Take ``amount`` slots from protected; refill the window from main's LRU end."""
        where = self._where
        for _ in range(amount):
            self._window_max += 1
            self._protected_max -= 1
            if len(self._protected) > self._protected_max:
                self._demote_protected()
            if self._probation:
                key, _ = self._probation.popitem(last=False)
            elif self._protected:
                key, _ = self._protected.popitem(last=False)
            else:
                continue
            self._window[key] = None
            where[key] = _WINDOW

    def _shrink_window(self, amount: int) -> None:
        """Give ``amount`` slots to protected; window LRU keys go to probation's LRU end."""
        probation, where = self._probation, self._where
        for _ in range(amount):
            self._window_max -= 1
            self._protected_max += 1
            if not self._window:
                continue
            key, _ = self._window.popitem(last=False)
            probation[key] = None
            probation.move_to_end(key, last=False)
            where[key] = _PROBATION
