"""Batch reads on a Redis Cluster: one pipeline of GETs per primary, every primary at once.

redis-py's ``mget_nonatomic`` sends one MGET per hash slot through its
general cluster pipeline; a batch of 100 spread keys touches about 100
slots, and the per-command routing and packing in Python cost more than the
round trips (about 3x a one-slot MGET at the tier). Here the keys are only
grouped by the primary that serves their slot, each group is packed once
(a GET per key alone in its slot, an MGET per slot shared by several),
written to that primary's connection, and the replies are read back in
order: one round trip per primary, all in flight together.

:func:`plan_reads` maps keys to :class:`NodeRead` groups from the client's
slot table (no I/O); :func:`read_sync` and :func:`read_async` run a plan on
the nodes' own connection pools. A connection whose replies were not all
read (an error reply, a timeout, a cancellation) is dropped, never reused.
The cluster clients (:mod:`qcache.l2.cluster`) hand the batch to redis-py's
``mget_nonatomic`` on any error or unknown slot: it follows MOVED/ASK
redirects and refreshes the topology after a failover.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.crc import key_slot


@dataclass(slots=True)
class NodeRead:
    """The keys of one batch that one primary serves, by slot: a GET per lone key, an MGET per shared slot."""

    node: Any
    slots: dict[int, tuple[list[int], list[bytes]]] = field(default_factory=dict)

    def add(self, slot: int, position: int, key: bytes) -> None:
        positions, keys = self.slots.setdefault(slot, ([], []))
        positions.append(position)
        keys.append(key)

    @property
    def request(self) -> bytes:
        """Every command of this group in the RESP wire format, for one write."""
        parts: list[bytes] = []
        for _, keys in self.slots.values():
            name = b"GET" if len(keys) == 1 else b"MGET"
            parts.append(b"*%d\r\n$%d\r\n%s\r\n" % (len(keys) + 1, len(name), name))
            parts.extend(b"$%d\r\n%s\r\n" % (len(key), key) for key in keys)
        return b"".join(parts)

    def place(self, replies: Sequence[Any], values: list[bytes | None]) -> None:
        """Put this group's replies (one per command, in :attr:`request` order) at their batch positions."""
        for (positions, _), reply in zip(self.slots.values(), replies, strict=True):
            if len(positions) == 1:
                values[positions[0]] = reply
            else:
                for position, value in zip(positions, reply, strict=True):
                    values[position] = value


def plan_reads(keys: Sequence[str], slots: Mapping[int, Sequence[Any]]) -> list[NodeRead] | None:
    """Group ``keys`` by the primary of their slot (``slots``: redis-py's slot -> [primary, replicas...]).

    Returns ``None`` when a slot has no known node (the caller then lets
    redis-py route the batch, which refreshes its table), never a partial plan.
    """
    groups: dict[int, NodeRead] = {}
    for position, key in enumerate(keys):
        encoded = key.encode("utf-8")
        slot = key_slot(encoded)
        nodes = slots.get(slot)
        if not nodes:
            return None
        primary = nodes[0]
        group = groups.get(id(primary))
        if group is None:
            group = groups[id(primary)] = NodeRead(primary)
        group.add(slot, position, encoded)
    return list(groups.values())


def read_sync(plan: Sequence[NodeRead], count: int) -> list[bytes | None]:
    """Run ``plan`` on sync ``ClusterNode`` pools: write to every primary first, then read each."""
    values: list[bytes | None] = [None] * count
    held: list[tuple[Any, Any]] = []
    try:
        for group in plan:
            pool = group.node.redis_connection.connection_pool
            connection = pool.get_connection()
            held.append((pool, connection))
            connection.send_packed_command([group.request])
        for group, (_, connection) in zip(plan, held, strict=True):
            group.place([connection.read_response() for _ in group.slots], values)
    except BaseException:
        for _, connection in held:
            connection.disconnect()  # replies may still be on their way: nobody else may read them
        raise
    finally:
        for pool, connection in held:
            pool.release(connection)
    return values


async def _read_node(group: NodeRead) -> list[Any]:
    node = group.node
    connection = node.acquire_connection()
    try:
        reconnect = getattr(node, "disconnect_if_needed", None)  # redis-py >= 7: a connection due to reconnect
        if reconnect is not None:
            await reconnect(connection)
        await connection.send_packed_command([group.request])
        return [await connection.read_response() for _ in group.slots]
    except BaseException:
        await asyncio.shield(connection.disconnect())
        raise
    finally:
        node.release(connection)


async def read_async(plan: Sequence[NodeRead], count: int) -> list[bytes | None]:
    """Run ``plan`` on asyncio ``ClusterNode`` connections, every primary at once."""
    replies = await asyncio.gather(*(_read_node(group) for group in plan), return_exceptions=True)
    values: list[bytes | None] = [None] * count
    for group, reply in zip(plan, replies, strict=True):
        if isinstance(reply, BaseException):
            raise reply
        group.place(reply, values)
    return values
