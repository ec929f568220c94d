"""Redis ACL users per role and project: what Redis itself enforces, whatever the process does.

``qcache acl generate`` writes one ``user`` line per role and project (for
an ACL file or ``redis.conf``) and, separately, the password of each user
for the services that connect as it (``REDIS_USERNAME`` / ``REDIS_PASSWORD``,
or a user in ``REDIS_URL``). Redis stores only the SHA-256 of a password.

Each user is limited to its project's keys, ``<prefix>:<project>:*`` (and,
through a Redis 7 selector, to setting and removing the health probe's
``<prefix>:__health__:*``), and to the commands its
permissions need: ``read`` GET, MGET, PTTL (and SCAN, which lists key names
of any project but never values: needed to invalidate by pattern, it
belongs to ``delete``); ``write`` SET, plus, for tag sets, ZADD,
ZREMRANGEBYSCORE, PTTL and PEXPIRE and the script that runs them
(EVALSHA, EVAL, SCRIPT LOAD: Redis checks every command a script runs
against the same rules); ``delete`` UNLINK, SCAN and ZRANGEBYSCORE (the
members of a tag). Only the
``admin`` permission adds everything else under the prefix; no user gets
``FLUSHALL``, ``FLUSHDB`` or ``KEYS``, and only admin gets ``CONFIG``.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from qcache.access.policy import BUILTIN_ROLES, AccessPolicy, Permission
from qcache.cache.keys import GLOBAL_NAMESPACE, check_name

#: Commands a connection needs whatever its role (redis-py's handshake, probes, INFO for health, and
#: the invalidation connection that keeps L1 coherent: CLIENT ID, CLIENT TRACKING, its one channel).
# CLIENT SETINFO is left out: Redis 7.0 does not know it, and redis-py ignores its refusal.
_BASE = ("+ping", "+hello", "+client|setname", "+info", "+select",
         "+client|id", "+client|tracking", "+subscribe", "&__redis__:invalidate")
_BY_PERMISSION: dict[Permission, tuple[str, ...]] = {
    Permission.READ: ("+get", "+mget", "+pttl", "+exists"),
    Permission.WRITE: ("+set", "+zadd", "+zremrangebyscore", "+pexpire", "+pttl", "+evalsha",
                       "+eval", "+script|load"),
    Permission.DELETE: ("+unlink", "+del", "+scan", "+zrangebyscore"),
    Permission.ADMIN: ("+@all",),
}
#: Never granted: wiping or listing the whole database.
_NEVER = ("-flushall", "-flushdb", "-keys")


@dataclass(frozen=True)
class AclUser:
    """One generated user: its name, its password (clear text, for the service) and its ACL line."""

    name: str
    role: str
    project: str
    password: str
    rule: str


def _escape_glob(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def acl_users(
    prefix: str,
    projects: Iterable[str],
    *,
    policy: AccessPolicy | None = None,
    roles: Iterable[str] | None = None,
    password: str | None = None,
) -> list[AclUser]:
    """The users for every role (default: the policy's and the built-in ones) in every project.

    ``password`` fixes every user's password (for tests); by default each gets
    32 random bytes, URL-safe.
    """
    check_name("key prefix", prefix)
    chosen_projects = list(projects)
    for project in chosen_projects:
        if project != GLOBAL_NAMESPACE:
            check_name("project", project)
    if not chosen_projects:
        raise ValueError("name at least one project (`_` is the namespace outside any project)")
    policy = policy or AccessPolicy()
    names = list(roles) if roles is not None else sorted(set(BUILTIN_ROLES) | set(policy.roles))
    users = []
    base = _escape_glob(prefix)
    for role_name in names:
        role = policy.definition(role_name)
        permissions = role.permissions
        for project in chosen_projects:
            if not role.may_enter(project):
                continue
            secret = password or secrets.token_urlsafe(32)
            digest = hashlib.sha256(secret.encode()).hexdigest()
            keys = (f"~{base}:*",) if Permission.ADMIN in permissions else (f"~{base}:{_escape_glob(project)}:*",)
            commands: list[str] = list(_BASE)
            for permission in Permission:
                if permission in permissions:
                    commands.extend(_BY_PERMISSION[permission])
            if Permission.ADMIN not in permissions:
                commands.append("-config")
            commands.extend(_NEVER)
            name = f"{prefix}-{role_name}-{project}".replace("_", "-") if project != GLOBAL_NAMESPACE \
                else f"{prefix}-{role_name}".replace("_", "-")
            # Every role may run the health probe: set, read and remove its own short-lived key.
            probe = f"(~{base}:__health__:* +set +get +unlink +del)"
            rule = " ".join(("user", name, "reset", "on", f"#{digest}", "resetchannels", *keys, "-@all", *commands,
                             probe))
            users.append(AclUser(name, role_name, project, secret, rule))
    return users
