"""Deterministic values of a kind and an approximate serialized size, for the probes.

``search``: a list of hits with metadata and a code chunk (compresses well);
``text``: source code as one string; ``embedding``: float32 rows of random
numbers (incompressible, as real embeddings are).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np

KINDS = ("search", "text", "embedding")
_HIT_BYTES = 600
_DIMS = 256


def value_of(kind: str, size_bytes: int, seed: int = 0) -> Any:
    """A value of ``kind`` whose msgpack form is about ``size_bytes``."""
    if size_bytes <= 0:
        raise ValueError(f"value size must be > 0 bytes, got {size_bytes}")
    rng = random.Random(f"{kind}-{size_bytes}-{seed}")
    if kind == "embedding":
        rows = max(1, size_bytes // (4 * _DIMS))
        dims = _DIMS if size_bytes >= 4 * _DIMS else max(1, size_bytes // 4)
        return np.random.default_rng(rng.randrange(1 << 30)).standard_normal((rows, dims)).astype(np.float32)
    if kind == "search":
        return [
            {
                "id": f"chunk-{i:05d}",
                "path": f"src/module_{i % 50}/handlers.py",
                "score": rng.random(),
                "content": "".join(
                    f"def f_{i}_{j}(x):\n    return store.get(x, {rng.randint(0, 999)})\n"
                    for j in range(max(1, min(size_bytes, _HIT_BYTES) // 50))
                ),
            }
            for i in range(max(1, size_bytes // _HIT_BYTES))
        ]
    if kind == "text":
        lines: list[str] = []
        length = 0
        while length < size_bytes:
            line = f"    result_{len(lines)} = index.lookup(query, limit={rng.randint(1, 99)})\n"
            lines.append(line)
            length += len(line)
        return "".join(lines)[:size_bytes]
    raise ValueError(f"unknown value kind {kind!r}; known: {', '.join(KINDS)}")
