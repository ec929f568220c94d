"""A keyring backed by the key store, rotating on an injectable clock."""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from qcache.codec.keys import DataKey, KeyListener
from qcache.codec.keystore import KeyStore, StoredKey
from qcache.errors import ConfigError

logger = logging.getLogger("qcache.codec")

#: After a failed rotation, keep the current key and try again this much later.
ROTATION_RETRY_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class _State:
    """One consistent view of the keys, swapped as a whole so readers never see half an update."""

    current: DataKey | None
    by_id: dict[bytes, DataKey]
    ids: list[str]
    deadline: float


class RotatingKeyring:
    """Keys from a :class:`~qcache.codec.keystore.KeyStore`; the newest encrypts.

    The hot path costs one clock call and a comparison. When the newest key
    is ``rotation_interval`` seconds old, the next :meth:`current` takes the
    store lock and either adopts a key another process has just added or adds
    one itself. :meth:`lookup` of an unknown id re-reads the store (at most
    once per ``reload_interval``), so values written by a process that rotated
    first stay readable here.

    With ``read_only=True`` the store is never created or changed: this is for
    reading entries written while encryption was on, after it was switched off.
    ``extra_keys`` (e.g. ``CACHE_ENCRYPTION_KEY``) decrypt but never encrypt.
    """

    def __init__(
        self,
        store: KeyStore,
        *,
        rotation_interval: float,
        clock: Callable[[], float] = time.time,
        retention: float | None = None,
        reload_interval: float = 1.0,
        read_only: bool = False,
        extra_keys: Iterable[bytes] = (),
    ) -> None:
        if rotation_interval < 0:
            raise ConfigError(f"the key rotation interval must be >= 0 seconds, got {rotation_interval}")
        self._store = store
        self._interval = rotation_interval
        self._clock = clock
        self._retention = retention
        self._reload_interval = reload_interval
        self._read_only = read_only
        self._extra = [DataKey.from_bytes(k) for k in extra_keys]
        self._lock = threading.Lock()
        self._last_reload = -math.inf
        self._listeners: weakref.WeakSet[KeyListener] = weakref.WeakSet()
        self._state = self._build(self._fetch(rotate=not read_only))

    def current(self) -> DataKey:
        """The key new values are encrypted under, rotating first when it is due."""
        state = self._state
        if self._clock() >= state.deadline:
            state = self._rotate()
        if state.current is None:
            raise ConfigError(f"the key store {self._store.path} holds no key and is opened read-only")
        return state.current

    def lookup(self, key_id: bytes) -> DataKey | None:
        """The key for ``key_id``; re-reads the store once in a while for ids it does not know."""
        found = self._state.by_id.get(key_id)
        if found is not None:
            return found
        if self._clock() - self._last_reload < self._reload_interval:
            return None
        with self._lock:
            if self._clock() - self._last_reload >= self._reload_interval:
                try:
                    self._publish(self._build(self._fetch(rotate=False)))
                except ConfigError as exc:
                    # A miss now beats an exception on the read path; the next reload retries.
                    logger.warning("could not re-read the key store %s: %s", self._store.path, exc)
        return self._state.by_id.get(key_id)

    def key_ids(self) -> list[str]:
        """Hex ids of every key that can decrypt, the current one first."""
        return list(self._state.ids)

    def subscribe(self, listener: KeyListener) -> None:
        """Tell ``listener`` (held weakly) whenever a rotation or reload changes the keys."""
        with self._lock:
            self._listeners.add(listener)

    def _publish(self, state: _State) -> None:
        """Swap in ``state``, then tell the listeners; called with the lock held."""
        self._state = state  # first: a listener asking again after forgetting must get the new keys
        for listener in list(self._listeners):
            listener.keys_changed()

    def _rotate(self) -> _State:
        """Adopt or create the next key; on failure keep the current one and retry later."""
        with self._lock:
            state = self._state
            if self._clock() < state.deadline:  # another thread rotated while we waited
                return state
            try:
                self._publish(self._build(self._fetch(rotate=True)))
            except ConfigError as exc:
                if state.current is None:
                    raise
                logger.warning("key rotation failed, still using key %s: %s", state.current.key_id.hex(), exc)
                self._state = _State(
                    state.current, state.by_id, state.ids, self._clock() + ROTATION_RETRY_SECONDS
                )
            return self._state

    def _fetch(self, *, rotate: bool) -> list[StoredKey]:
        """Keys from the store, rotating there when allowed."""
        self._last_reload = self._clock()
        if rotate and not self._read_only:
            return self._store.ensure_current(
                now=self._clock(), rotation_interval=self._interval, retention=self._retention
            )
        return self._store.load()

    def _build(self, stored: list[StoredKey]) -> _State:
        """The state for ``stored`` (newest first) plus the extra read-only keys."""
        entries = [DataKey.from_bytes(k.key, k.created_at) for k in stored]
        current = entries[0] if entries else None
        by_id = {e.key_id: e for e in self._extra}
        by_id.update({e.key_id: e for e in entries})
        stored_ids = {e.key_id for e in entries}
        ids = [e.key_id.hex() for e in entries] + [e.key_id.hex() for e in self._extra if e.key_id not in stored_ids]
        if self._read_only or current is None or self._interval <= 0:
            deadline = math.inf
        else:
            assert current.created_at is not None  # store keys always carry their creation time
            deadline = current.created_at + self._interval
        return _State(current, by_id, ids, deadline)
