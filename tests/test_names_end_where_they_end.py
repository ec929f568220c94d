"""Names checked by a regex reject a trailing newline (``$`` matches before one; a full match does not)."""

from __future__ import annotations

import pytest

from qcache import CacheConfig, QueryCache
from qcache.access.policy import AccessPolicy, namespace_wide
from qcache.cache.keys import check_name
from qcache.errors import ConfigError
from qcache.ops.events import EventError, check_event_type


@pytest.fixture
def cache() -> QueryCache:
    return QueryCache(CacheConfig.from_profile("development", CACHE_LEVEL="L1_MEMORY", CACHE_PROJECT_ISOLATION="true"))


def test_a_project_name_with_a_trailing_newline_is_refused(cache: QueryCache) -> None:
    assert cache.for_project("acme").namespace == "acme"
    with pytest.raises(ValueError, match="invalid project name"):
        cache.for_project("acme\n")
    cache.close()


@pytest.mark.parametrize("kind", ["key prefix", "project", "cache type"])
def test_every_checked_name_refuses_a_trailing_newline(kind: str) -> None:
    assert check_name(kind, "name") == "name"
    with pytest.raises(ValueError):
        check_name(kind, "name\n")


def test_an_event_type_with_a_trailing_newline_is_refused() -> None:
    assert check_event_type("model.update") == "model.update"
    with pytest.raises(EventError):
        check_event_type("model.update\n")


def test_a_role_name_with_a_trailing_newline_is_refused() -> None:
    AccessPolicy(roles={"reader": ["read"]})
    with pytest.raises(ConfigError, match="role name"):
        AccessPolicy(roles={"reader\n": ["read"]})


def test_a_pattern_ending_in_a_newline_is_not_namespace_wide() -> None:
    assert namespace_wide("*") and namespace_wide("*:*")
    assert not namespace_wide("*\n")  # matches only keys that end in a newline
