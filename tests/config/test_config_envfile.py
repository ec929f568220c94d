"""Editing .env files: one assignment rewritten, everything else kept, values round-trip."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from qcache.config.env import parse_env_text
from qcache.config.envfile import atomic_write, quote_value, set_assignment

VALUES = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=0x17F)
    | st.sampled_from(["\n", "\t", "'", '"', "\\", "#", "$", "=", " "]),
    max_size=40,
)


@given(VALUES)
def test_quoted_values_read_back_unchanged(value: str) -> None:
    assert parse_env_text(f"KEY={quote_value(value)}\n") == {"KEY": value}


@given(VALUES, VALUES)
def test_set_assignment_changes_only_that_key(old: str, new: str) -> None:
    text = (
        "# header comment\n"
        f"A={quote_value(old)}  # keep me\n"
        "\n"
        f"export B={quote_value(old)}\n"
        "C=plain\n"
    )
    updated = set_assignment(text, "B", new)
    assert parse_env_text(updated) == {"A": old, "B": new, "C": "plain"}
    assert updated.startswith("# header comment\n")
    assert "  # keep me\n" in updated


def test_comments_and_neighbours_are_kept_and_the_line_is_rewritten_whole() -> None:
    text = (
        "# Redis connection\n"
        "REDIS_HOST=localhost\n"
        "export REDIS_PORT=6379  # Redis server port\n"
        "\n"
        "  # indented comment\n"
        "REDIS_PORTS=1\n"
    )
    assert set_assignment(text, "REDIS_PORT", "7000") == text.replace(
        "export REDIS_PORT=6379  # Redis server port", "REDIS_PORT=7000"
    )


def test_quoted_value_with_comment_and_multiline_value() -> None:
    text = 'A="old # not a comment"  # real comment\nB="line1\nline2"\nC=3\n'
    out = set_assignment(text, "A", "new")
    assert out == 'A=new\nB="line1\nline2"\nC=3\n'
    out = set_assignment(text, "B", "x y")
    assert out == "A=\"old # not a comment\"  # real comment\nB='x y'\nC=3\n"
    assert parse_env_text(out) == {"A": "old # not a comment", "B": "x y", "C": "3"}


def test_missing_key_is_appended_and_newline_added() -> None:
    assert set_assignment("A=1", "B", "2") == "A=1\nB=2\n"
    assert set_assignment("", "B", "2") == "B=2\n"
    assert set_assignment("A=1\r\n", "B", "2") == "A=1\nB=2\n"  # python-dotenv writes LF line endings


def test_every_duplicate_is_rewritten() -> None:
    assert set_assignment("A=1\nA=2\n", "A", "3") == "A=3\nA=3\n"


def test_atomic_write_sets_mode_600_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "x.env"
    path.write_text("old")
    os.chmod(path, 0o644)
    atomic_write(path, "new\n")
    assert path.read_text() == "new\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["x.env"]  # no temp file left


def test_atomic_write_through_a_symlink_rewrites_its_target(tmp_path: Path) -> None:
    real = tmp_path / "real" / "app.env"
    real.parent.mkdir()
    real.write_text("REDIS_PORT=6379\n")
    link = tmp_path / ".env"
    link.symlink_to(real)
    atomic_write(link, "REDIS_PORT=7000\n")
    assert link.is_symlink()
    assert real.read_text() == "REDIS_PORT=7000\n"
    assert stat.S_IMODE(os.stat(real).st_mode) == 0o600
