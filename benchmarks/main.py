"""The main job: provision Redis, run what the harness measures, write ``results/``.

Run it through ``python3 run.py main``, which prepares the environment first.
Each stage reports what it did; a stage that does not exist yet says so
instead of printing numbers it did not measure.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import redis

from qcache.testing import provision_redis

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="run.py main", description=__doc__)
    parser.add_argument("--output", type=Path, default=ROOT / "results" / "runs",
                        help="folder for this run's results (default: results/runs)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_dir = args.output / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    print(f"[main] run {run_id}: results go to {run_dir}")
    with provision_redis() as endpoint:
        client = redis.Redis(**endpoint.client_kwargs())
        try:
            started = time.perf_counter()
            client.ping()
            ping_ms = (time.perf_counter() - started) * 1000
            info = client.info("server")
        finally:
            client.close()
        environment = {
            "run_id": run_id,
            "redis_provisioned_by": endpoint.method,
            "redis_version": info.get("redis_version"),
            "first_ping_ms": round(ping_ms, 3),
            "python": platform.python_version(),
            "machine": platform.machine(),
        }
        print(f"[main] Redis {environment['redis_version']} provisioned by "
              f"{endpoint.method}; first PING took {ping_ms:.2f} ms")
    (run_dir / "environment.json").write_text(json.dumps(environment, indent=2) + "\n")
    print("[main] benchmark suites and report: not yet available "
          "(they arrive with the benchmark suite); nothing else was measured.")
    print(f"[main] wrote {run_dir / 'environment.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
