"""Every command and sub-command of ``qcache`` answers ``--help`` without failing."""

from __future__ import annotations

import argparse

import pytest

from qcache.cli import build_parser, main


def _command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths += _command_paths(sub, (*prefix, name))
    return paths


@pytest.mark.parametrize("path", _command_paths(build_parser()), ids=" ".join)
def test_help_prints_and_exits_0(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main([*path, "--help"])
    assert stopped.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_every_area_has_a_command() -> None:
    paths = _command_paths(build_parser())
    assert {("config",), ("simulate",), ("report",)} <= set(paths)
