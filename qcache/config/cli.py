"""``qcache config``: validate, show, set and generate configuration."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from qcache.config.cache_config import CacheConfig
from qcache.config.deploy import DEPLOY_KINDS, render_deployment
from qcache.config.env import (
    DEFAULT_ENV_FILE,
    LoadSources,
    load_snapshot,
    parse_env_text,
    sources_for,
)
from qcache.config.envfile import ENV_FILE_MODE, atomic_write, set_assignment
from qcache.config.formats import FORMATS, render
from qcache.config.profiles import PROFILE_ALIASES
from qcache.config.schema import FieldIndex
from qcache.config.sections import BUILTIN_CACHE_TYPES
from qcache.config.templates import render_template
from qcache.config.validation import ConfigIssue, Severity, validate
from qcache.config.values import parse, to_env_text
from qcache.errors import ConfigError, MissingDependency

_GENERATE_CHOICES = ("dev", "test", "staging", "prod", "high-performance")


def register(subparsers: Any) -> None:
    """Add the ``config`` command and its sub-commands to the root parser."""
    parser = subparsers.add_parser(
        "config",
        help="validate, show, set and generate cache configuration",
        description="Inspect and edit the configuration that CacheConfig.from_env() loads "
        "(process environment over a .env file over the ENVIRONMENT profile over defaults).",
    )
    parser.set_defaults(func=lambda _args: _help(parser))
    commands = parser.add_subparsers(dest="config_command", metavar="SUBCOMMAND")

    validate_parser = commands.add_parser(
        "validate",
        help="report every configuration problem",
        description="Load the configuration and print every issue with its severity. "
        "Exit status 0 when there is no error (warnings are printed), 1 otherwise.",
    )
    _env_file_option(validate_parser)
    validate_parser.set_defaults(func=_validate)

    show_parser = commands.add_parser(
        "show",
        help="print the effective configuration (secrets masked)",
        description="Print the configuration as loaded, with secrets masked.",
    )
    _env_file_option(show_parser)
    show_parser.add_argument("--format", choices=FORMATS, default="json", help="output format")
    show_parser.set_defaults(func=_show)

    set_parser = commands.add_parser(
        "set",
        help="set one variable in a .env file",
        description="Set KEY to VALUE in a .env file, keeping its comments and other lines. "
        "The value is parsed and the resulting configuration validated first; on any error "
        "the file is left untouched. The file is written atomically with mode 600.",
    )
    set_parser.add_argument("key", metavar="KEY", help="environment variable name, e.g. REDIS_PORT")
    set_parser.add_argument("value", metavar="VALUE", help="new value")
    set_parser.add_argument(
        "--env-file", default=".env", help="file to edit (default: .env; created if missing)"
    )
    set_parser.set_defaults(func=_set)

    generate_parser = commands.add_parser(
        "generate",
        help="write a commented .env template (or a deployment template) for a profile",
        description="Print (or write with --output) a .env template listing every variable "
        "with its documentation and the profile's value, or with --kind a deployment template: "
        "docker-compose (Redis with the redis.conf beside it), redis-conf, or k8s (a ConfigMap "
        "with the profile's values and a Secret of placeholders). Values come from the profile "
        "alone: secrets are always left empty or as placeholders, never read from the environment.",
    )
    generate_parser.add_argument(
        "profile", choices=_GENERATE_CHOICES, metavar="PROFILE",
        help=f"one of {', '.join(_GENERATE_CHOICES)}",
    )
    generate_parser.add_argument("--output", "-o", help="write to this file (mode 600)")
    generate_parser.add_argument(
        "--force", action="store_true", help="overwrite an existing --output file"
    )
    generate_parser.add_argument(
        "--kind", choices=("env", *DEPLOY_KINDS), default="env",
        help="what to write: env (default), docker-compose, redis-conf or k8s",
    )
    generate_parser.add_argument("--namespace", default="qcache", help="k8s: the namespace (default qcache)")
    generate_parser.add_argument(
        "--redis-maxmemory", default="2gb", metavar="SIZE",
        help="redis-conf: Redis's maxmemory (default 2gb; it then evicts with allkeys-lru)",
    )
    generate_parser.set_defaults(func=_generate)


DEPLOY_FILE_MODE = 0o644


def _env_file_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--env-file",
        help="read this .env file (default: .env in the working directory, if present)",
    )


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _fail(message: str, problems: list[str] | None = None) -> int:
    print(message, file=sys.stderr)
    for problem in problems or []:
        print(f"  - {problem}", file=sys.stderr)
    return 1


def _load(env_file: str | None) -> CacheConfig:
    return CacheConfig.from_env(env_file=DEFAULT_ENV_FILE if env_file is None else env_file)


def _print_issue(issue: ConfigIssue) -> None:
    field = f" {issue.field}:" if issue.field else ""
    print(f"{issue.severity.value.upper():<7}{field} {issue.message} [{issue.code}]")


def _validate(args: argparse.Namespace) -> int:
    try:
        config = _load(args.env_file)
    except ConfigError as exc:
        return _fail("configuration could not be loaded:", exc.problems)
    issues = config.validate()
    for issue in issues:
        _print_issue(issue)
    errors = sum(1 for issue in issues if issue.severity is Severity.ERROR)
    warnings = len(issues) - errors
    if errors:
        print(f"configuration is invalid: {errors} error(s), {warnings} warning(s)")
        return 1
    print(f"configuration is valid ({warnings} warning(s))")
    return 0


def _show(args: argparse.Namespace) -> int:
    try:
        config = _load(args.env_file)
    except ConfigError as exc:
        return _fail("configuration could not be loaded:", exc.problems)
    try:
        print(render(config, args.format))
    except MissingDependency as exc:
        return _fail(str(exc))
    return 0


def _set(args: argparse.Namespace) -> int:
    index = FieldIndex(BUILTIN_CACHE_TYPES)
    spec = index.by_env(args.key)
    if spec is None:
        return _fail(index.unknown_key_message(args.key))
    try:
        value = parse(spec.kind, args.value)
    except ValueError as exc:
        return _fail(f"{spec.env}: {exc}")
    path = Path(args.env_file)
    try:
        old_text = path.read_text(encoding="utf-8") if path.exists() else ""
    except (OSError, UnicodeDecodeError) as exc:
        return _fail(f"cannot read {path}: {exc}")
    new_text = set_assignment(old_text, spec.env, to_env_text(value, reveal=True))

    # Without KEY from the process environment, so the value being written is the
    # one validated even where the environment would shadow it.
    environ = {k: v for k, v in os.environ.items() if k != spec.env}
    sources = sources_for(path, environ, {}, index)
    try:
        snapshot = load_snapshot(sources, BUILTIN_CACHE_TYPES, file_values=parse_env_text(new_text))
    except ConfigError as exc:
        return _fail(f"not written: {path} would not load:", exc.problems)
    errors = [i for i in validate(snapshot) if i.severity is Severity.ERROR]
    before = _error_keys(sources, old_text)
    # Refuse errors this edit causes, and any error about KEY itself; errors the
    # file already had elsewhere must not block fixing them one `set` at a time.
    blocking = [i for i in errors if _key(i) not in before or i.field == spec.env]
    if blocking:
        return _fail(
            f"not written: {spec.env} would make the configuration invalid:",
            [str(issue) for issue in blocking],
        )

    try:
        atomic_write(path, new_text, ENV_FILE_MODE)
    except OSError as exc:
        return _fail(f"cannot write {path}: {exc}")
    shown = "" if spec.is_secret else f"={to_env_text(value)}"
    print(f"{spec.env}{shown} written to {path}")
    if errors:
        print(
            f"note: {path} still has {len(errors)} error(s) it had before this change:",
            file=sys.stderr,
        )
        for issue in errors:
            print(f"  - {issue}", file=sys.stderr)
    if spec.env in os.environ:
        print(
            f"note: {spec.env} is also set in the environment, which takes precedence",
            file=sys.stderr,
        )
    return 0


def _key(issue: ConfigIssue) -> tuple[str, str | None]:
    return (issue.code, issue.field)


def _error_keys(sources: LoadSources, text: str) -> set[tuple[str, str | None]]:
    """The errors the file had before the edit (empty when it did not even load)."""
    try:
        snapshot = load_snapshot(sources, BUILTIN_CACHE_TYPES, file_values=parse_env_text(text))
    except ConfigError:
        return set()
    return {_key(i) for i in validate(snapshot) if i.severity is Severity.ERROR}


def _generate(args: argparse.Namespace) -> int:
    try:
        if args.kind == "env":
            text = render_template(args.profile)
        else:
            text = render_deployment(args.kind, args.profile, namespace=args.namespace,
                                     maxmemory=args.redis_maxmemory)
    except ValueError as exc:
        return _fail(str(exc))
    if not args.output:
        print(text, end="")
        return 0
    path = Path(args.output)
    if path.exists() and not args.force:
        return _fail(f"{path} exists; use --force to overwrite it")
    try:
        # A .env may receive secrets once edited; the deployment templates hold none.
        atomic_write(path, text, ENV_FILE_MODE if args.kind == "env" else DEPLOY_FILE_MODE)
    except OSError as exc:
        return _fail(f"cannot write {path}: {exc}")
    print(f"{PROFILE_ALIASES.get(args.profile, args.profile)} {args.kind} template written to {path}")
    return 0

