"""Tests of qcache.testing: Redis provisioning and its pytest plugin."""
