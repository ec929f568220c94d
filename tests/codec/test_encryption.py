"""The AES-GCM stage: nonces and key binding."""

from __future__ import annotations

import multiprocessing
import threading
from typing import Any

from qcache.codec import Codec, Keyring, NonceSource


def test_nonces_are_unique_across_refills_and_threads() -> None:
    source = NonceSource()
    seen: list[bytes] = []
    lock = threading.Lock()

    def draw() -> None:
        mine = [source() for _ in range(2000)]
        with lock:
            seen.extend(mine)

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 8000 and all(len(n) == 12 for n in seen)
    assert len(set(seen)) == len(seen)


def _draw_in_child(source: NonceSource, queue: Any) -> None:
    queue.put(source())


def test_a_forked_child_does_not_reuse_the_parents_pooled_nonces() -> None:
    source = NonceSource()
    source()  # fill this thread's pool
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_draw_in_child, args=(source, queue))
    child.start()
    child_nonce = queue.get(timeout=30)
    child.join(timeout=30)
    assert child_nonce != source()  # without the fork hook both would pop the same pooled nonce


def test_same_value_encrypts_differently_each_time(keyring: Keyring) -> None:
    codec = Codec(keys=keyring)
    a, b = (codec.encode("same", key="k", encrypt=True) for _ in range(2))
    assert a != b and a[8:20] != b[8:20]
    assert b"same" not in a
