"""Shared pytest setup: the Redis provisioning fixtures, and pytester for testing plugins."""

from __future__ import annotations

pytest_plugins = ["qcache.testing.pytest_plugin", "pytester"]
