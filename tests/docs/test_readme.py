"""The README stays true: its configuration reference is the one the code generates."""

from __future__ import annotations

from pathlib import Path

from qcache.config import CacheConfig
from qcache.config.docs import BEGIN, END, reference_markdown, splice
from qcache.config.schema import FieldIndex

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_reference_matches_the_settings() -> None:
    text = README.read_text(encoding="utf-8")
    assert BEGIN in text and END in text
    assert splice(text) == text, "README is stale: run `python -m qcache.config.docs --write`"


def test_reference_lists_every_environment_variable() -> None:
    reference = reference_markdown()
    for spec in FieldIndex.for_snapshot(CacheConfig().snapshot()):
        assert f"| `{spec.env}` |" in reference


def test_readme_starts_with_the_two_commands() -> None:
    head = README.read_text(encoding="utf-8").split("## ", 1)[0]
    assert "python3 run.py main" in head
    assert "python3 run.py tests" in head
