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
from binascii import crc_hqx
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from qcache.l2.replies import read_replies, read_replies_async

_SLOTS = 16384
_SLOT_MASK = _SLOTS - 1
_BRACE = ord("{")


def slot_of(key: bytes) -> int:
    """The hash slot of ``key``: CRC16 of the whole key, or of its ``{hash tag}`` when it has one."""
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1 : end]
    return crc_hqx(key, 0) % _SLOTS


def _mget(keys: Sequence[bytes]) -> bytes:
    """``MGET k1 k2 ...`` in the RESP wire format."""
    parts = [b"*%d\r\n$4\r\nMGET\r\n" % (len(keys) + 1)]
    parts.extend([b"$%d\r\n%s\r\n" % (len(key), key) for key in keys])
    return b"".join(parts)


@dataclass(slots=True)
class NodeRead:
    """The commands of one batch for one primary: a GET per key alone in its slot, an MGET per shared slot.

    ``positions`` holds, per command, the batch position its reply fills (a
    GET) or the positions of an MGET's; ``parts`` the commands in the wire
    format, in pieces joined for the one write.
    """

    node: Any
    positions: list[int | list[int]] = field(default_factory=list)
    parts: list[bytes] = field(default_factory=list)

    @property
    def request(self) -> bytes:
        """Every command of this group, for one write."""
        return b"".join(self.parts)

    @property
    def commands(self) -> int:
        """How many commands, so how many replies."""
        return len(self.positions)

    def place(self, replies: Sequence[Any], values: list[bytes | None]) -> None:
        """Put this group's replies (one per command, in order) at their batch positions.

        Raises an error reply (a redirect, a refusal): the caller then hands the batch to redis-py.
        """
        for positions, reply in zip(self.positions, replies, strict=True):
            if isinstance(reply, Exception):
                raise reply
            if type(positions) is int:
                values[positions] = reply
            else:
                for position, value in zip(positions, reply, strict=True):  # type: ignore[arg-type]
                    values[position] = value


#: ``GET`` up to its key's length header, by key length: most keys of a batch share a length.
_GET_HEADS: dict[int, bytes] = {}
_CRLF = b"\r\n"


def _get_head(length: int) -> bytes:
    head = _GET_HEADS.get(length)
    if head is None:
        head = b"*2\r\n$3\r\nGET\r\n$%d\r\n" % length
        if len(_GET_HEADS) < 4096:
            _GET_HEADS[length] = head
    return head


def plan_reads(keys: Sequence[str], slots: Mapping[int, Sequence[Any]]) -> list[NodeRead] | None:
    """Group ``keys`` by the primary of their slot (``slots``: redis-py's slot -> [primary, replicas...]).

    Returns ``None`` when a slot has no known node (the caller then lets
    redis-py route the batch, which refreshes its table), never a partial plan.
    """
    encoded = [key.encode("utf-8") for key in keys]
    # slot_of, inlined for keys without a brace (an int in bytes is a memchr; b"{" in bytes is not)
    key_slots = [slot_of(key) if _BRACE in key else crc_hqx(key, 0) & _SLOT_MASK for key in encoded]
    groups: dict[int, NodeRead] = {}
    if len(set(key_slots)) == len(key_slots):
        # Every key alone in its slot (spread keys, the common case): a GET each, no grouping by slot.
        heads = _GET_HEADS
        for position, key in enumerate(encoded):
            nodes = slots.get(key_slots[position])
            if not nodes:
                return None
            group = groups.get(id(nodes[0]))
            if group is None:
                group = groups[id(nodes[0])] = NodeRead(nodes[0])
            group.positions.append(position)
            group.parts += (heads.get(len(key)) or _get_head(len(key)), key, _CRLF)
    else:
        by_slot: dict[int, list[int]] = {}
        for position, slot in enumerate(key_slots):
            shared = by_slot.get(slot)
            if shared is None:
                by_slot[slot] = [position]
            else:
                shared.append(position)
        for slot, positions in by_slot.items():
            nodes = slots.get(slot)
            if not nodes:
                return None
            group = groups.get(id(nodes[0]))
            if group is None:
                group = groups[id(nodes[0])] = NodeRead(nodes[0])
            if len(positions) == 1:
                key = encoded[positions[0]]
                group.positions.append(positions[0])
                group.parts += (_get_head(len(key)), key, _CRLF)
            else:
                group.positions.append(positions)
                group.parts.append(_mget([encoded[p] for p in positions]))
    # Pools are taken in one order, by node name: two batches holding one node's connection each
    # never wait on each other's (the pools block when full).
    return sorted(groups.values(), key=_node_name)


def _node_name(group: NodeRead) -> str:
    return str(group.node.name)


def read_sync(plan: Sequence[NodeRead], count: int) -> list[bytes | None]:
    """Run ``plan`` on sync ``ClusterNode`` pools: write to every primary first, then read each."""
    values: list[bytes | None] = [None] * count
    held: list[tuple[Any, Any]] = []
    try:
        for group in plan:
            node_client = group.node.redis_connection
            if node_client is None:  # a node the table names but redis-py has not connected yet
                raise redis.ConnectionError(f"no connection to {group.node.name} yet")
            pool = node_client.connection_pool
            connection = pool.get_connection()
            held.append((pool, connection))
            connection.send_packed_command([group.request])
        for group, (_, connection) in zip(plan, held, strict=True):
            replies: list[Any] = []
            read_replies(connection, group.commands, replies)
            group.place(replies, values)
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
        replies: list[Any] = []
        await read_replies_async(connection, group.commands, replies)
        return replies
    except BaseException:
        # Before the release: a cancelled read (the deadline) must not hand on a half-read connection.
        await connection.disconnect(nowait=True)
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
