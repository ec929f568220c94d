"""The ``qcache`` command: one sub-command per area, each defined beside its code."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

# Each module exposes ``register(subparsers)``; it adds its sub-command and sets
# ``func`` (taking the parsed namespace, returning an exit code) as a default.
_SUBCOMMAND_MODULES = (
    "qcache.config.cli",
    "qcache.sim.cli",
    "qcache.bench.cli",
    "qcache.tune.cli",
    "qcache.load.cli",
    "qcache.ops.cli",
    "qcache.access.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qcache",
        description="qcache: a two-tier (memory + Redis) query cache and its tuning harness.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in _SUBCOMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``qcache config show | head``): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
