"""The sync facade's shared operations are the async facade's without ``async`` and ``await``.

``tests/cache/sync_from_async.py`` derives them; this checks that ``sync.py``
holds exactly what it derives, so the two facades cannot drift apart.
"""

from __future__ import annotations

from .sync_from_async import BEGIN_ASYNC, BEGIN_SYNC, END, PACKAGE, block, generate


def test_the_sync_operations_are_generated_from_the_async_ones() -> None:
    wanted = generate((PACKAGE / "aio.py").read_text(encoding="utf-8"))
    current = block((PACKAGE / "sync.py").read_text(encoding="utf-8"), BEGIN_SYNC)
    assert current == wanted, "sync.py is stale: run `python tests/cache/sync_from_async.py`"
    assert "await " not in current and "async " not in current


def test_the_rewrites_take_out_async_await_and_the_event_loop_sleep() -> None:
    source = (
        f"{BEGIN_ASYNC}\n"
        "    async def f(self) -> int:\n"
        "        async with self._lock:\n"
        "            await asyncio.sleep(0.1)\n"
        "        return await self._run(plan)\n"
        f"{END}\n"
    )
    assert generate(source) == (
        "    def f(self) -> int:\n"
        "        with self._lock:\n"
        "            time.sleep(0.1)\n"
        "        return self._run(plan)\n"
    )
