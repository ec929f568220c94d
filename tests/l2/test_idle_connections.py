"""IdleConnections: the sync pool's LIFO of idle connections keeps LifoQueue's behaviour on its fast steps."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time

import pytest
import redis

from qcache.l2.idle import IdleConnections
from qcache.l2.tier import RedisTier
from qcache.testing import RedisEndpoint


def test_last_in_first_out_bounded_and_empty_like_a_lifo_queue() -> None:
    idle = IdleConnections(2)
    idle.put_nowait("a")
    idle.put_nowait("b")
    with pytest.raises(queue.Full):
        idle.put_nowait("c")
    assert idle.get() == "b" and idle.get() == "a"
    with pytest.raises(queue.Empty):
        idle.get(timeout=0.01)
    with pytest.raises(queue.Empty):
        idle.get(block=False)


def test_a_caller_waiting_for_a_connection_gets_the_next_one_put_back() -> None:
    idle = IdleConnections(1)
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(idle.get(timeout=5.0)))
    waiter.start()
    deadline = time.monotonic() + 5.0
    while idle._waiting == 0 and time.monotonic() < deadline:  # the waiter is inside get()
        time.sleep(0.001)
    assert idle._waiting == 1
    idle.put_nowait("conn")
    waiter.join(timeout=5.0)
    assert not waiter.is_alive() and got == ["conn"] and idle._waiting == 0


def test_many_threads_share_few_items_without_losing_or_duplicating_one() -> None:
    idle = IdleConnections(3)
    for item in ("x", "y", "z"):
        idle.put_nowait(item)
    held: set[str] = set()
    lock = threading.Lock()
    errors: list[str] = []

    def borrow(rounds: int) -> None:
        for _ in range(rounds):
            item = idle.get(timeout=5.0)
            with lock:
                if item in held:
                    errors.append(f"{item} handed out twice")
                held.add(item)
            time.sleep(0.0002)  # hold it, as a command would: a duplicate hand-out has time to show
            with lock:
                held.discard(item)
            idle.put_nowait(item)

    threads = [threading.Thread(target=borrow, args=(300,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30.0)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert sorted(idle.queue) == ["x", "y", "z"] and idle._waiting == 0


def test_the_sync_tier_pool_keeps_its_idle_connections_here() -> None:
    pool = redis.BlockingConnectionPool(max_connections=4, timeout=0.5)
    RedisTier._bound_pool(pool)
    assert isinstance(pool.pool, IdleConnections) and list(pool.pool.queue) == [None] * 4
    pool.disconnect()


def test_under_gevent_the_pool_keeps_redis_pys_queue_and_still_serves(redis_endpoint: RedisEndpoint) -> None:
    # Locust's workers monkey-patch the standard library: queue.LifoQueue becomes gevent's, which
    # has no mutex or deque for the fast steps. A tier built there must still work.
    pytest.importorskip("gevent")
    script = (
        "import gevent.monkey; gevent.monkey.patch_all()\n"
        "import sys, redis\n"
        "from qcache.l2.idle import IdleConnections\n"
        "from qcache.l2.tier import RedisTier\n"
        "pool = redis.BlockingConnectionPool(host=sys.argv[1], port=int(sys.argv[2]), max_connections=2, timeout=1)\n"
        "RedisTier._bound_pool(pool)\n"
        "assert not isinstance(pool.pool, IdleConnections), type(pool.pool)\n"
        "client = redis.Redis(connection_pool=pool)\n"
        "client.set('qcache-test:gevent', b'1', px=5000)\n"
        "assert client.get('qcache-test:gevent') == b'1'\n"
        "client.delete('qcache-test:gevent')\n"
        "pool.disconnect()\n"
    )
    done = subprocess.run([sys.executable, "-c", script, redis_endpoint.host, str(redis_endpoint.port)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
