"""The configuration reference of the README, generated from the settings themselves.

    python -m qcache.config.docs          # print the Markdown tables
    python -m qcache.config.docs --write  # replace them in README.md

A test compares README.md with this output, so the documentation cannot drift
from the code.
"""

from __future__ import annotations

import sys
from pathlib import Path

from qcache.config.cache_config import CacheConfig
from qcache.config.schema import FieldIndex

BEGIN = (
    "<!-- config-reference: generated from qcache.config by `python -m qcache.config.docs --write`;"
    " a test keeps it in sync -->"
)
END = "<!-- /config-reference -->"

_TITLES = {
    "core": "Core",
    "redis": "Redis",
    "memory": "Memory cache (L1)",
    "cache_types": "Cache types",
    "security": "Security",
    "performance": "Performance",
    "monitoring": "Monitoring and metrics",
}


def reference_markdown() -> str:
    """One Markdown table per section: variable, default, meaning."""
    config = CacheConfig()
    snapshot = config.snapshot()
    defaults = config.to_env()
    lines: list[str] = []
    section = None
    for spec in FieldIndex.for_snapshot(snapshot):
        if spec.section != section:
            section = spec.section
            if lines:
                lines.append("")
            lines += [f"#### {_TITLES.get(section, section)}", "", "| variable | default | meaning |", "|---|---|---|"]
        default = "(unset)" if spec.is_secret or defaults.get(spec.env, "") == "" else f"`{defaults[spec.env]}`"
        doc = spec.doc.replace("|", "\\|")
        lines.append(f"| `{spec.env}` | {default} | {doc} |")
    return "\n".join(lines) + "\n"


def splice(readme: str) -> str:
    """``readme`` with the text between the markers replaced by the current reference."""
    start = readme.index(BEGIN) + len(BEGIN)
    end = readme.index(END)
    return readme[:start] + "\n" + reference_markdown() + readme[end:]


def main(argv: list[str]) -> int:
    if argv == ["--write"]:
        path = Path("README.md")
        path.write_text(splice(path.read_text(encoding="utf-8")), encoding="utf-8")
        print(f"updated {path}")
    else:
        print(reference_markdown(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
