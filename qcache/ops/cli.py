"""``qcache backup`` (namespace snapshots of the Redis tier) and ``qcache health`` (a probe with exit codes)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import redis

from qcache.config import CacheConfig
from qcache.config.env import DEFAULT_ENV_FILE
from qcache.errors import ConfigError
from qcache.ops.backup import BackupError, create_backup, list_backups, restore_backup, verify_backup
from qcache.ops.health import probe
from qcache.ops.redis_client import sync_client

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def register(subparsers: Any) -> None:
    """Add the ``backup`` and ``health`` sub-commands."""
    health = subparsers.add_parser(
        "health",
        help="check the cache once: exit 0 healthy, 1 degraded, 2 unhealthy (a container probe)",
        description="Build the cache from the configuration (environment, .env, ENVIRONMENT), check its "
                    "memory tier and its Redis tier once, print the result and exit 0 when healthy, 1 when "
                    "degraded, 2 when unhealthy, or when the check does not finish within --timeout.",
    )
    health.add_argument("--timeout", type=float, default=10.0, help="seconds before the probe gives up (default 10)")
    health.add_argument("--json", action="store_true", help="print the whole report as JSON")
    health.add_argument("--env-file", help="read this .env file (default: .env if present)")
    health.set_defaults(func=_health)

    metrics = subparsers.add_parser("metrics", help="Prometheus exposition of the cache and its Redis")
    metrics_commands = metrics.add_subparsers(dest="metrics_command", metavar="COMMAND")
    serve = metrics_commands.add_parser(
        "serve", help="serve /metrics for a cache built from the configuration, until interrupted",
        description="Serve the Prometheus metrics of a cache built from the configuration (environment, "
                    ".env, ENVIRONMENT) and its Redis server's INFO gauges. In a service, mount "
                    "qcache.ops.prometheus.metrics_app(cache) instead: it exposes the cache the service uses.",
    )
    serve.add_argument("--port", type=int, default=9464, help="port (default 9464)")
    serve.add_argument("--addr", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--env-file", help="read this .env file (default: .env if present)")
    serve.set_defaults(func=_serve_metrics)
    metrics.set_defaults(func=lambda args: (metrics.print_help(), EXIT_USAGE)[1])

    analytics = subparsers.add_parser(
        "analytics", help="hourly, daily or weekly report from the recorded stats snapshots",
        description="Aggregate the snapshots that StatsRecorder writes to <CACHE_KEY_PREFIX>:stats: "
                    "average and peak hit rate, p50 and p99 latency, error rate, per bucket and as a trend. "
                    "hourly: last hour in 5-minute buckets; daily: last day in hours; weekly: last week in days.",
    )
    analytics.add_argument("period", choices=("hourly", "daily", "weekly"))
    analytics.add_argument("--json", action="store_true", help="print the report as JSON")
    analytics.add_argument("--env-file", help="read this .env file (default: .env if present)")
    analytics.set_defaults(func=_analytics)

    maintenance = subparsers.add_parser("maintenance", help="reclaim expired entries, advise on the L1 size")
    maintenance_commands = maintenance.add_subparsers(dest="maintenance_command", metavar="COMMAND")
    run = maintenance_commands.add_parser(
        "run", help="one maintenance pass: prune tag sets, size advice, statistics snapshot",
        description="Prune the members of expired entries from every tag set under CACHE_KEY_PREFIX, report "
                    "the last day of recorded statistics (qcache analytics), and advise on MEMORY_CACHE_MAX_SIZE: "
                    "with --trace, by replaying the trace in the simulator with the configured policy. In a "
                    "service, qcache.ops.maintenance.MaintenanceSchedule runs run_maintenance() on the live cache "
                    "(its own L1, and its sampled reads when CACHE_ACCESS_SAMPLE_RATE is set).",
    )
    run.add_argument("--trace", type=Path, help="a trace of the service's keys to size L1 with (see qcache simulate)")
    run.add_argument("--format", dest="trace_format", default="auto", help="the trace's format (default: auto)")
    run.add_argument("--json", action="store_true", help="print the report as JSON")
    run.add_argument("--env-file", help="read this .env file (default: .env if present)")
    run.set_defaults(func=_maintenance)
    maintenance.set_defaults(func=lambda args: (maintenance.print_help(), EXIT_USAGE)[1])

    parser = subparsers.add_parser(
        "backup",
        help="snapshots of the cache's Redis namespace: create, list, verify, restore",
        description="Back up the cache's keys in Redis (values exactly as stored, remaining TTLs kept) "
                    "and restore them, into the same or another prefix or project. The Redis server and "
                    "CACHE_KEY_PREFIX come from the configuration (environment, .env, ENVIRONMENT).",
    )
    commands = parser.add_subparsers(dest="backup_command", metavar="COMMAND")

    def with_config(command: argparse.ArgumentParser) -> None:
        command.add_argument("--env-file", help="read this .env file (default: .env if present)")

    create = commands.add_parser("create", help="write a backup folder at PATH (never overwrites)")
    create.add_argument("path", type=Path, metavar="PATH")
    create.add_argument("--project", help="only this project's keys (default: every project under the prefix)")
    with_config(create)
    create.set_defaults(func=_create)

    listing = commands.add_parser("list", help="the backups in DIR with their counts")
    listing.add_argument("folder", type=Path, metavar="DIR")
    listing.set_defaults(func=_list)

    verify = commands.add_parser("verify", help="check a backup completely: exit 0 when sound, 1 when not")
    verify.add_argument("path", type=Path, metavar="PATH")
    verify.set_defaults(func=_verify)

    restore = commands.add_parser(
        "restore", help="verify, then write a backup into Redis",
        description="Verify the whole backup first (nothing is written from a corrupt one), skip entries "
                    "that have expired since, and set the rest with their remaining TTL. With --prefix or "
                    "--project the entries move there; encrypted entries are bound to their original key "
                    "and are skipped (counted) when moved.",
    )
    restore.add_argument("path", type=Path, metavar="PATH")
    restore.add_argument("--prefix", help="restore under this CACHE_KEY_PREFIX (default: the backup's)")
    restore.add_argument("--project", help="restore into this project (default: each entry's own)")
    restore.add_argument("--no-overwrite", action="store_true", help="leave keys that already exist as they are")
    with_config(restore)
    restore.set_defaults(func=_restore)
    parser.set_defaults(func=lambda args: (parser.print_help(), EXIT_USAGE)[1])


def _health(args: argparse.Namespace) -> int:
    try:
        result = probe(_config(args), args.timeout)
    except (ConfigError, ValueError) as exc:
        print(f"qcache health: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.report, indent=2, default=str))
    else:
        print(result.status)
        for reason in result.report.get("reasons", []):
            print(f"  {reason}")
    return result.exit_code


def _serve_metrics(args: argparse.Namespace) -> int:
    from prometheus_client import start_http_server

    from qcache import QueryCache
    from qcache.ops.prometheus import CacheCollector, RedisInfoCollector, registry_for

    if not 0 < args.port < 65536:
        print(f"qcache metrics: --port must be 1-65535, got {args.port}", file=sys.stderr)
        return EXIT_USAGE
    try:
        config = _config(args)
    except ConfigError as exc:
        print(f"qcache metrics: {exc}", file=sys.stderr)
        return EXIT_USAGE
    client = sync_client(config)
    with QueryCache(config) as cache:
        registry = registry_for([CacheCollector.of(cache), RedisInfoCollector(lambda: client.info())])
        try:
            server, thread = start_http_server(args.port, addr=args.addr, registry=registry)
        except OSError as exc:
            print(f"qcache metrics: cannot listen on {args.addr}:{args.port}: {exc}", file=sys.stderr)
            return EXIT_FAILED
        print(f"serving http://{args.addr}:{args.port}/metrics (Ctrl-C stops)", flush=True)
        try:
            thread.join()
        except KeyboardInterrupt:
            pass
        finally:
            server.shutdown()
            client.close()
    return EXIT_OK


def _recorded(client: redis.Redis, config: CacheConfig, period: Any) -> Any:
    """The analytics report of ``period`` up to now, from the recorded snapshots."""
    from qcache.ops.analytics import PERIODS, aggregate, read_snapshots, stream_key

    now = time.time()
    window, _ = PERIODS[period]
    # One interval before the window too: each process's last snapshot before it is the baseline.
    since = now - window - 2 * config.monitoring.stats_collection_interval
    return aggregate(read_snapshots(client, stream_key(config), since), period=period, end=now)


def _analytics(args: argparse.Namespace) -> int:

    try:
        config = _config(args)
    except ConfigError as exc:
        print(f"qcache analytics: {exc}", file=sys.stderr)
        return EXIT_USAGE
    client = sync_client(config)
    try:
        report = _recorded(client, config, args.period)
    except (redis.RedisError, OSError) as exc:
        return _fail(f"cannot read the snapshots: {exc}")
    finally:
        client.close()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return EXIT_OK
    for line in format_report(report):
        print(line)
    return EXIT_OK


def _maintenance(args: argparse.Namespace) -> int:
    from qcache import QueryCache
    from qcache.ops.maintenance import run_maintenance
    from qcache.sim import TraceFile
    from qcache.sim.errors import TraceError

    try:
        config = _config(args)
        trace = None if args.trace is None else TraceFile(args.trace, args.trace_format)
    except (ConfigError, TraceError, OSError) as exc:
        print(f"qcache maintenance: {exc}", file=sys.stderr)
        return EXIT_USAGE
    client = sync_client(config)
    try:
        try:
            recorded = _recorded(client, config, "daily")
        except (redis.RedisError, OSError) as exc:
            return _fail(f"cannot reach Redis: {exc}")
        if args.trace is not None and not args.trace.is_file():
            print(f"qcache maintenance: trace {args.trace} does not exist", file=sys.stderr)
            return EXIT_USAGE
        with QueryCache(config) as cache:
            try:
                report = run_maintenance(cache, client=client, trace=trace, recorded=recorded.to_dict())
            except TraceError as exc:
                print(f"qcache maintenance: {exc}", file=sys.stderr)
                return EXIT_USAGE
    finally:
        client.close()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        print(f"tag sets: {report.tag_sets_scanned} scanned, {report.tag_members_pruned} expired members pruned")
        print("last day, recorded: " + (format_report(recorded)[0] if recorded.snapshots else "no snapshots"))
        for advice in report.advice:
            size = "no size" if advice.recommended is None else f"{advice.recommended:,}"
            print(f"{advice.setting}: {advice.current:,} -> {size} [{advice.basis}]")
            print(f"  {advice.reason}")
        for error in report.errors:
            print(f"error: {error}")
    return EXIT_FAILED if report.errors else EXIT_OK


def format_report(report: Any) -> list[str]:
    """The report as text lines."""

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.1%}"

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f} ms"

    if not report.snapshots:
        return [f"{report.period}: no snapshots recorded in the window (is a StatsRecorder running?)"]
    lines = [
        f"{report.period} report: {report.lookups:,} lookups from {report.processes} process(es), "
        f"{report.snapshots} snapshots",
        f"  hit rate average {pct(report.average_hit_rate)}, peak {pct(report.peak_hit_rate)}; "
        f"latency p50 {ms(report.p50_ms)}, p99 {ms(report.p99_ms)}; error rate {pct(report.error_rate)}",
        f"  trend: {report.trend.summary}",
    ]
    for bucket in report.buckets:
        if bucket.lookups:
            stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(bucket.start))
            lines.append(f"  {stamp}Z  {bucket.lookups:>10,} lookups  hit rate {pct(bucket.hit_rate):>6}  "
                         f"p50 {ms(bucket.p50_ms):>11}  p99 {ms(bucket.p99_ms):>11}  errors {pct(bucket.error_rate)}")
    return lines


def _config(args: argparse.Namespace) -> CacheConfig:
    return CacheConfig.from_env(env_file=args.env_file or DEFAULT_ENV_FILE)


def _fail(message: str, code: int = EXIT_FAILED) -> int:
    print(f"qcache backup: {message}", file=sys.stderr)
    return code


def _create(args: argparse.Namespace) -> int:
    try:
        config = _config(args)
        client = sync_client(config)
        try:
            manifest = create_backup(client, args.path, prefix=config.core.key_prefix, project=args.project)
        finally:
            client.close()
    except (BackupError, ConfigError, ValueError) as exc:
        return _fail(str(exc))
    except (redis.RedisError, OSError) as exc:
        return _fail(f"Redis or the disk failed, nothing was kept: {exc}")
    print(f"{manifest.entries} entries of {manifest.prefix}:{manifest.project or '*'} backed up to {args.path} "
          f"({manifest.data_bytes:,} bytes, sha256 {manifest.sha256[:16]}...)")
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    try:
        found = list_backups(args.folder)
    except BackupError as exc:
        return _fail(str(exc))
    for path, manifest in found:
        if isinstance(manifest, BackupError):
            print(f"{path.name}  unreadable: {manifest}")
        else:
            print(f"{path.name}  {manifest.created_at}  {manifest.prefix}:{manifest.project or '*'}  "
                  f"{manifest.entries} entries  {manifest.data_bytes:,} bytes")
    if not found:
        print(f"no backup in {args.folder}")
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    try:
        manifest = verify_backup(args.path)
    except BackupError as exc:
        return _fail(str(exc))
    print(f"{args.path}: sound, {manifest.entries} entries, checksum matches")
    return EXIT_OK


def _restore(args: argparse.Namespace) -> int:
    try:
        config = _config(args)
        client = sync_client(config)
        try:
            report = restore_backup(client, args.path, prefix=args.prefix, project=args.project,
                                    overwrite=not args.no_overwrite,
                                    max_key_length=config.core.max_key_length)
        finally:
            client.close()
    except (BackupError, ConfigError, ValueError) as exc:
        return _fail(str(exc))
    except (redis.RedisError, OSError) as exc:
        return _fail(f"Redis failed during the restore: {exc}")
    print(f"restored {report.restored} entries into {report.prefix}:{report.project or '*'}; skipped "
          f"{report.skipped_expired} expired, {report.skipped_bound} encrypted (bound to their original key), "
          f"{report.skipped_existing} already present")
    return EXIT_OK
