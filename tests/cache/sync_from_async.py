"""The sync facade's shared operations, generated from the async facade's (as psycopg does).

``qcache/cache/aio.py`` holds, between two marker lines, the operations whose
logic is the same for threads and coroutines; ``qcache/cache/sync.py`` holds
the same lines with ``async``/``await`` taken out. ``test_sync_generated.py``
checks that the two agree; after editing the async side, run
``python tests/cache/sync_from_async.py`` to rewrite the sync side.
"""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "qcache" / "cache"
BEGIN_ASYNC = "    # -- begin: shared with sync.py, which tests/cache/sync_from_async.py derives from this --"
BEGIN_SYNC = "    # -- begin: derived from aio.py by tests/cache/sync_from_async.py; edit aio.py, then run it --"
END = "    # -- end of the shared operations --"

# Applied in order, to whole lines of code; the async side must use only these forms.
_REWRITES = (
    (re.compile(r"\basync def "), "def "),
    (re.compile(r"\basync with "), "with "),
    (re.compile(r"\bawait asyncio\.sleep\("), "time.sleep("),
    (re.compile(r"\bawait "), ""),
)


def block(text: str, begin: str) -> str:
    """The lines between ``begin`` and the end marker (both excluded)."""
    start = text.index(begin + "\n") + len(begin) + 1
    return text[start : text.index(END + "\n", start)]


def generate(async_source: str) -> str:
    """The sync side's block for the async facade's source."""
    out = block(async_source, BEGIN_ASYNC)
    for pattern, replacement in _REWRITES:
        out = pattern.sub(replacement, out)
    return out


def regenerate() -> bool:
    """Rewrite sync.py's block from aio.py's; True if it changed."""
    sync_path = PACKAGE / "sync.py"
    sync_source = sync_path.read_text(encoding="utf-8")
    current = block(sync_source, BEGIN_SYNC)
    wanted = generate((PACKAGE / "aio.py").read_text(encoding="utf-8"))
    if current == wanted:
        return False
    head, _, rest = sync_source.partition(BEGIN_SYNC + "\n")
    tail = rest[rest.index(END + "\n") :]
    sync_path.write_text(head + BEGIN_SYNC + "\n" + wanted + tail, encoding="utf-8")
    return True


if __name__ == "__main__":
    print("sync.py rewritten" if regenerate() else "sync.py already up to date")
