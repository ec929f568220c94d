"""``qcache acl generate``: Redis ACL users per role and project, and their passwords for the services."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from qcache.access.acl import acl_users
from qcache.config import CacheConfig
from qcache.config.env import DEFAULT_ENV_FILE
from qcache.errors import ConfigError


def register(subparsers: Any) -> None:
    """Add the ``acl`` sub-command."""
    parser = subparsers.add_parser("acl", help="Redis ACL users per role and project")
    commands = parser.add_subparsers(dest="acl_command", metavar="COMMAND")
    generate = commands.add_parser(
        "generate",
        help="write ACL user lines (for an ACL file or redis.conf) and the users' passwords",
        description="One Redis ACL user per role (admin, service, client) and project, limited to "
                    "<CACHE_KEY_PREFIX>:<project>:* and to the commands its permissions need; never "
                    "FLUSHALL, FLUSHDB or KEYS, CONFIG for admin only. The ACL lines hold only SHA-256 "
                    "digests of the passwords; the passwords themselves go to --passwords (mode 600).",
    )
    generate.add_argument("--project", action="append", required=True, metavar="NAME",
                          help="a project (repeat for several; `_` is the namespace outside any project)")
    generate.add_argument("--role", action="append", metavar="NAME", help="only these roles (default: all)")
    generate.add_argument("--output", "-o", type=Path, help="write the ACL lines here (default: print them)")
    generate.add_argument("--passwords", type=Path, default=Path("acl-passwords.env"),
                          help="where the passwords go, as an .env file (default acl-passwords.env)")
    generate.add_argument("--force", action="store_true", help="overwrite existing files")
    generate.add_argument("--env-file", help="read CACHE_KEY_PREFIX from this .env file")
    generate.set_defaults(func=_generate)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _write_private(path: Path, text: str, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, mode)


def _generate(args: argparse.Namespace) -> int:
    try:
        config = CacheConfig.from_env(env_file=args.env_file or DEFAULT_ENV_FILE)
        users = acl_users(config.core.key_prefix, args.project, roles=args.role)
    except (ConfigError, ValueError) as exc:
        print(f"qcache acl: {exc}", file=sys.stderr)
        return 2
    for path in filter(None, (args.output, args.passwords)):
        if path.exists() and not args.force:
            print(f"qcache acl: {path} exists; use --force to overwrite it", file=sys.stderr)
            return 1
    rules = "".join(user.rule + "\n" for user in users)
    secrets_text = "# Passwords of the qcache ACL users: give each service its own; never commit this file.\n"
    for user in users:
        tag = f"{user.role}_{user.project}".upper().replace("-", "_").replace(".", "_")
        secrets_text += f"QCACHE_ACL_{tag}_USERNAME={user.name}\nQCACHE_ACL_{tag}_PASSWORD={user.password}\n"
    _write_private(args.passwords, secrets_text, 0o600)
    if args.output:
        _write_private(args.output, rules, 0o644)
        print(f"{len(users)} ACL users written to {args.output}; their passwords to {args.passwords}")
    else:
        print(rules, end="")
    return 0
