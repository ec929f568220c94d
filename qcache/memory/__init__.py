"""The in-process L1 tier and its eviction policies."""
