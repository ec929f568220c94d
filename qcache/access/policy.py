"""Who may do what: permissions, roles, project grants and the tokens that establish a role.

Threat model. A role-bound view (``cache.as_role("client")``) protects against
mistakes and against code that is handed a restricted view: a plugin, a
request handler or a tenant's job given a ``client`` view cannot write,
delete, clear or reach another project, and cannot get the unrestricted cache
back from the view. It does not protect against code that holds the cache
itself or can read the process's memory: inside one process, Python enforces
nothing. When roles have tokens (``AccessPolicy(tokens=...)``), ``as_role``
also demands the role's token, so only code that was given the secret can
take the role. What must hold against a compromised process is enforced by
Redis: ``qcache acl generate`` writes one ACL user per role and project,
limited to that project's keys and to the commands its permissions need.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from qcache.errors import AccessDenied, ConfigError


class Permission(str, Enum):
    """What an operation needs."""

    READ = "read"
    WRITE = "write"
    DELETE = "delete"
    ADMIN = "admin"


_ALL = frozenset(Permission)
#: The seed's roles.
BUILTIN_ROLES: dict[str, frozenset[Permission]] = {
    "admin": _ALL,
    "service": frozenset({Permission.READ, Permission.WRITE}),
    "client": frozenset({Permission.READ}),
}

#: Each guarded operation and the permissions it needs (``get_or_set`` writes on a miss).
OPERATIONS: dict[str, frozenset[Permission]] = {
    "get": frozenset({Permission.READ}),
    "get_many": frozenset({Permission.READ}),
    "get_or_set": frozenset({Permission.READ, Permission.WRITE}),
    "set": frozenset({Permission.WRITE}),
    "set_many": frozenset({Permission.WRITE}),
    "flush": frozenset({Permission.WRITE}),
    "delete": frozenset({Permission.DELETE}),
    "invalidate_pattern": frozenset({Permission.DELETE}),  # ADMIN when the pattern spans the namespace
    "invalidate_tags": frozenset({Permission.DELETE}),
    "validate": frozenset({Permission.READ, Permission.DELETE}),  # drops the entry when its source changed
    "clear": frozenset({Permission.ADMIN}),
    "stats": frozenset({Permission.READ}),
    "health": frozenset({Permission.READ}),
    "last_health": frozenset({Permission.READ}),
    "on_alert": frozenset({Permission.ADMIN}),
    "config": frozenset({Permission.ADMIN}),  # the live configuration can be changed through it
}

_ROLE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")  # fullmatch: "$" would let a trailing newline in
_NAMESPACE_WIDE = re.compile(r"[*?:\[\]\-!^]*")  # only wildcards and separators: every key matches


def namespace_wide(pattern: str) -> bool:
    """Whether a glob can match every key of a namespace (``*``, ``*:*``, ``?*``...)."""
    return bool(_NAMESPACE_WIDE.fullmatch(pattern)) and "*" in pattern


def token_digest(token: str) -> str:
    """What a policy stores for a role's token: its SHA-256 (the token itself stays with its holder)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Role:
    """A role: its permissions and the projects it may enter (None: every project)."""

    name: str
    permissions: frozenset[Permission]
    projects: frozenset[str] | None = None

    def allows(self, needed: Iterable[Permission]) -> bool:
        return all(p in self.permissions for p in needed)

    def may_enter(self, project: str) -> bool:
        return self.projects is None or project in self.projects


@dataclass(frozen=True)
class AccessPolicy:
    """Roles, project grants and role tokens.

    ``roles`` adds roles or redefines the built-in ones (name -> permissions);
    ``grants`` limits a role to some projects (a role without a grant may
    enter every project); ``tokens`` maps a role to the SHA-256 of its token
    (:func:`token_digest`): a role with a token is taken only with that token.
    """

    roles: Mapping[str, Iterable[Permission | str]] = field(default_factory=dict)
    grants: Mapping[str, Iterable[str]] = field(default_factory=dict)
    tokens: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = [f"role name {name!r} must be 1-32 lower-case letters, digits, '_' or '-'"
                    for name in self.roles if not _ROLE_NAME.fullmatch(name)]
        for name, permissions in self.roles.items():
            for permission in permissions:
                try:
                    Permission(permission)
                except ValueError:
                    problems.append(f"role {name!r}: unknown permission {permission!r} "
                                    f"(choose from {', '.join(p.value for p in Permission)})")
        known = set(BUILTIN_ROLES) | set(self.roles)
        problems += [f"grant for unknown role {name!r}" for name in self.grants if name not in known]
        problems += [f"token for unknown role {name!r}" for name in self.tokens if name not in known]
        problems += [f"the token of role {name!r} must be a SHA-256 hex digest (see token_digest)"
                     for name, digest in self.tokens.items() if not re.fullmatch(r"[0-9a-f]{64}", digest)]
        if problems:
            raise ConfigError("invalid access policy: " + "; ".join(problems), problems)

    def definition(self, name: str) -> Role:
        """The role as defined (permissions and grants), without checking any token."""
        if name in self.roles:
            permissions = frozenset(Permission(p) for p in self.roles[name])
        elif name in BUILTIN_ROLES:
            permissions = BUILTIN_ROLES[name]
        else:
            raise AccessDenied(f"unknown role {name!r}")
        grant = self.grants.get(name)
        return Role(name, permissions, None if grant is None else frozenset(grant))

    def role(self, name: str, token: str | None = None) -> Role:
        """The role ``name``, after checking its token when it has one; AccessDenied otherwise."""
        role = self.definition(name)
        expected = self.tokens.get(name)
        if expected is not None:
            given = token_digest(token) if token is not None else ""
            if not hmac.compare_digest(given, expected):
                raise AccessDenied(f"role {name!r} needs its token")
        return role
