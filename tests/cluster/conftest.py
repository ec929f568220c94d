"""Fixtures for the Redis Cluster tests (the cluster itself comes from qcache.testing.pytest_plugin)."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def prefix() -> str:
    """A CACHE_KEY_PREFIX unique to this test, so tests share one cluster without flushing it."""
    return f"qcc-{uuid.uuid4().hex[:10]}"
