"""Tag membership in Redis: one sorted set per tag, scored by each member's expiry. Pure, no I/O.

A tag's set holds the storage keys written with that tag, each scored by the
epoch millisecond at which its entry expires. Nothing ever has to remember to
remove a member: every tagged write first drops the members that expired more
than :data:`GRACE_MS` ago, and the set itself expires :data:`GRACE_MS` after
its longest-lived member, so a tag's set never holds more than the entries
written with it within one TTL. A member whose entry was deleted or
overwritten without the tag stays until its expiry; invalidating the tag then
deletes that key too, which costs a refill, never a stale read.

The grace keeps clocks of different hosts from pruning a member whose entry
Redis still holds: members are dropped, and looked up, only past a minute of
skew. A single tagged write is one call of :data:`SET_TAGGED_SCRIPT` (one
command, so a tagged ``set`` costs little more than a plain one), or the same
commands in one transaction on a sync cache's invalidation connection
(:func:`qcache.l2.direct.tagged_set_request`); batches queue them on a
redis-py pipeline, which is the same synchronous call for the sync and the
asyncio client.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

#: How long after its expiry a member is still looked up and kept (clock skew between hosts).
GRACE_MS = 60_000


#: One tagged write, server side: KEYS = entry key, tag set keys; ARGV = data, PX, the member's score
#: (entry expiry, epoch ms), the pruning bound and the sets' expiry (epoch ms), and now (epoch ms).
#: A set's expiry is only ever extended. Every command is checked against the caller's ACL as usual.
SET_TAGGED_SCRIPT = """
local prune = '(' .. ARGV[4]
local keep_ms = tonumber(ARGV[5]) - tonumber(ARGV[6])
for i = 2, #KEYS do
  redis.call('ZADD', KEYS[i], ARGV[3], KEYS[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', prune)
  local left = redis.call('PTTL', KEYS[i])
  if left >= 0 and left < keep_ms or left == -1 then
    redis.call('PEXPIRE', KEYS[i], keep_ms)
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""


def script_call(key: str, data: bytes, px: int, memberships: Sequence[Membership], now_ms: int
                ) -> tuple[list[str], list[bytes | int]]:
    """KEYS and ARGV of :data:`SET_TAGGED_SCRIPT` for one entry and its memberships."""
    expires_at_ms = max(m.expires_at_ms for m in memberships)
    keys = [key, *dict.fromkeys(m.tag_key for m in memberships)]
    return keys, [data, px, expires_at_ms, now_ms - GRACE_MS, expires_at_ms + GRACE_MS, now_ms]


class Membership(NamedTuple):
    """A storage key written with a tag: the tag's set key, the member, and when the entry expires (epoch ms)."""

    tag_key: str
    member: str
    expires_at_ms: int


class TagUpdate(NamedTuple):
    """Every change one tagged write makes to one tag's set."""

    tag_key: str
    members: dict[str, int]
    expire_at_ms: int


def tag_updates(memberships: Iterable[Membership]) -> list[TagUpdate]:
    """Group memberships by tag: one ZADD per tag, the set kept until its longest member expires."""
    grouped: dict[str, dict[str, int]] = {}
    for tag_key, member, expires_at_ms in memberships:
        grouped.setdefault(tag_key, {})[member] = int(expires_at_ms)
    return [TagUpdate(key, members, max(members.values()) + GRACE_MS) for key, members in grouped.items()]


def tag_commands(updates: Sequence[TagUpdate], now_ms: int) -> list[tuple[str | int, ...]]:
    """The commands of ``updates``, four a tag, as argument tuples.

    ZADD first, so that a key is in its tag's set before its value is
    written; then the pruning of long-expired members and the set's own
    expiry, set when it has none (NX) or extended when later (GT).
    """
    commands: list[tuple[str | int, ...]] = []
    for tag_key, members, expire_at_ms in updates:
        # Relative to now, as the script does: the server's clock need not agree with ours.
        keep_ms = max(1, expire_at_ms - now_ms)
        scored: list[str | int] = []
        for member, score in members.items():
            scored += (score, member)
        commands += (
            ("ZADD", tag_key, *scored),
            ("ZREMRANGEBYSCORE", tag_key, "-inf", f"({now_ms - GRACE_MS}"),
            ("PEXPIRE", tag_key, keep_ms, "NX"),
            ("PEXPIRE", tag_key, keep_ms, "GT"),
        )
    return commands


def queue_tag_updates(pipe: Any, updates: Sequence[TagUpdate], now_ms: int) -> None:
    """Queue the commands of ``updates`` (:func:`tag_commands`) on a pipeline (sync or asyncio: queuing does no I/O)."""
    for command in tag_commands(updates, now_ms):
        pipe.execute_command(*command)


def queue_member_reads(pipe: Any, tag_keys: Sequence[str], now_ms: int) -> None:
    """Queue, per tag, the read of its members that may still be alive."""
    for tag_key in tag_keys:
        pipe.zrangebyscore(tag_key, now_ms - GRACE_MS, "+inf")


def merge_members(replies: Iterable[Sequence[bytes | str]]) -> list[str]:
    """The distinct members of every tag, in first-seen order."""
    seen: dict[str, None] = {}
    for reply in replies:
        for member in reply:
            seen[member.decode("utf-8", "surrogateescape") if isinstance(member, bytes) else member] = None
    return list(seen)
