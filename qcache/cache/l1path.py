"""The facades' L1 fast paths: a hit of ``get`` and a ``set`` of a memory-only cache.

:func:`l1_hit_paths` builds the L1 step of every ``get`` and the sync
facade's ``get`` itself (per view, serving a hit in one Python frame);
:func:`memory_set_function` the memory-only ``set``.

Both are judged against ``cachetools`` in nanoseconds (see ``benchmarks/gate.toml``),
so each is one closure: everything it touches is fixed for the cache's
lifetime and read from the closure's cells rather than from attributes, and
the steps of the store and the metrics it needs are inlined through the hooks
they hand out (:meth:`qcache.memory.store.MemoryStore.hit_path`,
:class:`qcache.cache.metrics.SampledTally`). Counts are exact; only one call
in :data:`qcache.cache.metrics.LATENCY_SAMPLE_EVERY` reads the clock to be timed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from qcache.cache.generations import SLOT_MASK
from qcache.cache.inputs import MAX_TTL, check_key
from qcache.cache.keys import HASHED_MARK
from qcache.cache.plans import MISSING

if TYPE_CHECKING:
    from qcache.cache.core import CacheCore

#: ``lookup(namespace, key, cache_type)``: the L1 value of a plain key, or MISSING.
L1Lookup = Callable[[str, str, "str | None"], Any]


#: ``view_get(namespace, full_get)``: the sync ``get`` of one view (see :func:`l1_hit_paths`).
ViewGet = Callable[[str, Callable[..., Any]], Callable[..., Any]]


def l1_hit_paths(core: CacheCore) -> tuple[L1Lookup, ViewGet]:
    """Build the hot path of ``get``, and the builder of the sync facade's ``get`` of one view.

    ``l1_lookup(namespace, key, cache_type)`` is the L1 step of every ``get``:
    the L1 value of a plain key, or MISSING (the caller checked ``use_l1``).
    It does only what an L1 hit needs (no generator; the key was checked when
    it was set). On MISSING the caller goes on with
    ``ReadPlans.get_begin(..., l1_checked=True)``: a plain key's L1 miss is
    already counted here; hashed keys (long, or starting with ``#``) are left
    to ``get_begin``, which compares the caller key.

    ``view_get(namespace, full_get)`` returns the sync facade's ``get`` for
    one view: a Python call is about a sixth of an L1 hit, so the view's
    ``get`` is a closure serving the hit in one frame (see
    ``QueryCache._instrument``) instead of a method calling ``l1_lookup``. It
    serves only a live, plain entry while L1 is in use, exactly as
    ``l1_lookup`` would; anything else (a miss, an expired or hashed entry, a
    non-str key, a type not looked up yet, a disabled or closed cache) goes to
    ``full_get``, the facade's method, before any side effect.

    A hit draws a ticket from the L1 hits' tally (the exact count) and, when
    the ticket says so, arms the timing of the next call: that call goes
    through ``l1_lookup``'s ``timed``, which reads the clock around the lookup
    and queues the latency (a view's ``get`` hands an armed call to its method,
    which gets there). The flag is shared by threads without a lock; a race
    only times one call more or less, never changes a count.
    """
    l1 = core.l1
    if l1 is None:
        return (lambda namespace, key, cache_type: MISSING), (lambda namespace, full_get: full_get)
    get_entry = l1.get_entry
    # MemoryStore.get_entry's lock-free hit, inlined (see MemoryStore.hit_path for the contract).
    lookup, clock, reads, replay, reads_batch = l1.hit_path()

    def follow(new_lookup: Callable[[str], Any]) -> None:
        nonlocal lookup
        lookup = new_lookup

    l1.follow_lookup(follow)  # the store may move its data to another dict (a second partition)
    note_read = reads.append
    locator = core.locator
    bases = locator.bases
    type_base = locator.type_base
    max_key_length = locator.max_key_length
    tally, samples_batch, fold = core.metrics.l1_hit_tally()
    tick = tally.tick
    mask = tally.sample_mask
    samples = tally.samples
    note_sample = samples.append
    tier_miss = core.metrics.tier_miss
    perf_ns = time.perf_counter_ns
    armed = True  # the first hit is timed: a cache's first stats already show a measured latency

    def l1_lookup(namespace: str, key: str, cache_type: str | None) -> Any:
        nonlocal armed
        if armed:
            return timed(namespace, key, cache_type)
        try:
            base = bases[namespace][cache_type][0]
        except KeyError:
            base = type_base(namespace, cache_type)[0]
        if type(key) is not str:
            key = check_key(key)  # a str subclass becomes its text; anything else raises TypeError
        skey = base + key
        entry = lookup(skey)
        # A hashed entry (meta holds its caller key) found under base + key can only be
        # another key's, and an expired one must go: both take the store's full path.
        if entry is None or entry[3] is not None or (entry[2] is not None and entry[2] <= clock()):
            if entry is not None and entry[3] is not None:
                return MISSING  # get_begin reads it again, comparing the caller key
            found = get_entry(skey)  # counts the miss (or finds a value written meanwhile)
            if found is None or found[3] is not None:
                # No plain entry lives under a too-long key; hashed keys are get_begin's.
                if found is None and len(skey) <= max_key_length and key[:1] != HASHED_MARK:
                    tier_miss("l1")
                return MISSING
            value = found[0]
        else:
            note_read(skey)
            if len(reads) >= reads_batch:
                replay()
            value = entry[0]
        if not tick() & mask:
            armed = True
        return value

    def timed(namespace: str, key: str, cache_type: str | None) -> Any:
        nonlocal armed
        armed = False
        started = perf_ns()
        value = l1_lookup(namespace, key, cache_type)
        if value is MISSING:
            armed = True  # a miss is timed by get_begin; time the next hit instead
            return value
        note_sample(perf_ns() - started)
        if len(samples) >= samples_batch:
            fold()
        return value

    def view_get(namespace: str, full_get: Callable[..., Any]) -> Callable[..., Any]:
        def get(key: str, default: Any = None, *, cache_type: str | None = None) -> Any:
            nonlocal armed
            if armed or not core.serve_l1:
                return full_get(key, default, cache_type=cache_type)
            try:
                base = bases[namespace][cache_type][0]
            except (KeyError, TypeError):  # a type not looked up yet, or not a type name: the method's
                return full_get(key, default, cache_type=cache_type)
            if type(key) is not str:
                return full_get(key, default, cache_type=cache_type)
            skey = base + key
            entry = lookup(skey)
            if entry is None or entry[3] is not None or (entry[2] is not None and entry[2] <= clock()):
                return full_get(key, default, cache_type=cache_type)
            note_read(skey)
            if len(reads) >= reads_batch:
                replay()
            if not tick() & mask:
                armed = True
            return entry[0]

        return get

    return l1_lookup, view_get


#: ``memory_set(fallback, namespace, key, value, ttl=None, *, cache_type=None, tags=(), source=None)``:
#: ``QueryCache.set``'s arguments after a fallback and a namespace (see :func:`memory_set_function`).
MemorySet = Callable[..., None]
#: The two steps of ``WritePlans``: ``full_set(namespace, key, value, ttl, cache_type, tags, source)``.
FullSet = Callable[[str, str, Any, object, "str | None", object, object], None]


def memory_set_function(core: CacheCore, full_set: FullSet) -> MemorySet:
    """Build ``set`` for a cache without L2 (level ``L1_MEMORY``).

    With no L2 write there is no record to build: the value is weighed
    (:meth:`qcache.codec.Codec.plain_size`) and put into L1 for its TTL,
    with the same key checks, write generation and metrics as the two steps
    of ``WritePlans`` (``full_set``), which still take tags and a content
    source. Sets are counted and sampled like hits (see :func:`l1_hit_paths`).

    ``memory_set(fallback, namespace, key, value, ttl, cache_type=..., tags=..., source=...)``
    takes ``QueryCache.set``'s arguments after two more, so that
    ``functools.partial(memory_set, fallback, namespace)`` *is* a view's
    ``set`` with no Python frame of its own (a frame is a tenth of this set;
    see ``QueryCache._instrument``). ``fallback`` is the facade's ``set``
    method, called with the same arguments whenever the cache is closed,
    disabled or writes L2 (a configuration change may switch the level);
    the facades' methods, which checked that themselves, pass ``None``.
    """
    l1 = core.l1
    if l1 is None:

        def two_steps(
            fallback: Callable[..., None] | None, namespace: str, key: str, value: Any, ttl: object = None, *,
            cache_type: str | None = None, tags: object = (), source: object = None,
        ) -> None:
            if fallback is not None:
                fallback(key, value, ttl, cache_type=cache_type, tags=tags, source=source)
            else:
                full_set(namespace, key, value, ttl, cache_type, tags, source)

        return two_steps
    set_l1 = l1.set_path()  # the store's set without the checks this function makes itself
    max_ttl = MAX_TTL
    locator = core.locator
    locate = locator.locate
    bases = locator.bases
    type_base = locator.type_base
    max_key_length = locator.max_key_length
    entries = core.entries
    resolve_ttl = entries.resolve_ttl
    gen_slots = core.generations.slots
    tally, samples_batch, fold = core.metrics.l1_set_tally()
    tick = tally.tick
    mask = tally.sample_mask
    samples = tally.samples
    note_sample = samples.append
    perf_ns = time.perf_counter_ns
    # The keys starting with HASHED_MARK are those from it up to (not including) the next
    # character: two comparisons in C, cheaper than a slice and a comparison.
    past_mark = chr(ord(HASHED_MARK) + 1)
    armed = True

    def memory_set(
        fallback: Callable[..., None] | None, namespace: str, key: str, value: Any, ttl: object = None, *,
        cache_type: str | None = None, tags: object = (), source: object = None,
    ) -> None:
        nonlocal armed
        if armed or tags or source is not None or not core.serve_l1 or core.use_l2:
            slow(fallback, namespace, key, value, ttl, cache_type, tags, source)
            return
        # KeyLocator.locate and EntryCodec.resolve_ttl inlined for a plain key and a plain TTL.
        try:
            base, spec = bases[namespace][cache_type]
        except KeyError:
            base, spec = type_base(namespace, cache_type)  # ValueError for an unknown type
        if type(key) is not str or not key.isascii():
            key = check_key(key)
        skey = base + key
        meta = None
        if len(skey) > max_key_length or HASHED_MARK <= key < past_mark:  # (a key starting with the mark)
            spec, skey, _ = locate(namespace, key, cache_type)
            meta = key  # the caller key, beside its hashed storage key
        if (type(ttl) is int or type(ttl) is float) and 0 < ttl <= max_ttl and not entries.ttl_jitter:
            seconds = ttl + 0.0  # a float, as the store wants it (cheaper than a call of float())
        elif ttl is None and not entries.ttl_jitter:
            seconds = spec.ttl
        else:
            seconds = resolve_ttl(spec, ttl)  # checks the TTL, and jitters it
        size = spec.codec.codec.plain_size_of(value)
        gen_slots[hash(skey) & SLOT_MASK] += 1  # as in WritePlans.set_end
        set_l1(skey, value, size, seconds, meta, spec.name)
        if not tick() & mask:
            armed = True

    def slow(
        fallback: Callable[..., None] | None, namespace: str, key: str, value: Any, ttl: object,
        cache_type: str | None, tags: object, source: object,
    ) -> None:
        """What the one frame does not serve: the facade's method, the two steps, or a timed call."""
        nonlocal armed
        if not core.serve_l1 or core.use_l2:  # closed, disabled, L1 off, or writing L2
            if fallback is not None:
                fallback(key, value, ttl, cache_type=cache_type, tags=tags, source=source)
            else:  # a configuration change raced the method's own checks: the two steps take any state
                full_set(namespace, key, value, ttl, cache_type, tags, source)
            return
        if tags or source is not None:
            full_set(namespace, key, value, ttl, cache_type, tags, source)  # times itself
            return
        armed = False
        started = perf_ns()
        try:
            memory_set(None, namespace, key, value, ttl, cache_type=cache_type)
        except BaseException:
            armed = True
            raise
        note_sample(perf_ns() - started)
        if len(samples) >= samples_batch:
            fold()

    return memory_set
