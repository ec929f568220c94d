"""The exceptions qcache raises; every one derives from :class:`QCacheError`."""

from __future__ import annotations


class QCacheError(Exception):
    """Base class of every error raised by qcache."""


class ConfigError(QCacheError, ValueError):
    """A configuration value is missing, unparsable or invalid.

    ``problems`` holds one line per problem so that callers (and the CLI) can
    show everything that is wrong at once instead of the first thing only.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems: list[str] = list(problems) if problems else [message]
        super().__init__(message)


class SerializationError(QCacheError, TypeError):
    """A value cannot be serialized, or stored bytes cannot be decoded."""


class IntegrityError(SerializationError):
    """Stored bytes are corrupt, foreign, tampered with or under an unknown key."""


class BackendError(QCacheError):
    """The L2 tier failed (connection, timeout, server error)."""


class CircuitOpenError(BackendError):
    """The L2 tier is being skipped after repeated failures."""


class ServerRefusal(BackendError):
    """The L2 server answered with an error reply (out of memory, wrong type, argument out of range).

    The server is reachable, so retrying the same command cannot help: a
    caller holding a batch drops the refused writes instead of retrying them.
    """


class CacheClosedError(QCacheError):
    """The cache (or the cache a project view came from) was closed; it accepts no more operations.

    Raised rather than ignored so that a write made after shutdown is never
    silently dropped.
    """


class MissingDependency(QCacheError, ImportError):
    """A feature needs an optional package that is not installed; the message names the extra to install."""


class ProvisioningError(QCacheError):
    """No Redis server could be provisioned for tests, benchmarks or load tests."""


class AccessDenied(QCacheError, PermissionError):
    """The caller is not allowed to touch the requested key space."""


class RedisAccessDenied(ServerRefusal, AccessDenied):
    """Redis refused a command to the ACL user the cache connects as (``NOPERM``).

    Not an outage but a configuration that does not fit the operation, so it
    reaches the caller as an :class:`AccessDenied` (a ``PermissionError``)
    even outside strict mode.
    """
