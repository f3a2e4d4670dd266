"""`make bench`: measure the floor, the real path and the rest in one run; print the table, write JSON and a chart.

    python -m benchmarks.run [--repetitions N] [--quick] [--skip-suite]

Everything runs on loopback, with loops bounded by call counts or seconds. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib.metadata
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from acceptance.targets import default_target_name
from acceptance.targets.local import REPO_ROOT
from benchmarks import floor, report, stack, suite
from benchmarks.load import LoadSettings

OUT = REPO_ROOT / "reports" / "bench"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=3, help="repetitions per figure; medians are reported")
    parser.add_argument("--quick", action="store_true", help="fewer calls and shorter loads (a smoke run)")
    parser.add_argument("--skip-suite", action="store_true", help="do not time the acceptance suite")
    parser.add_argument("--out", type=Path, default=OUT, help=f"where results go (default {OUT})")
    return parser.parse_args(argv)


def _step(title: str) -> float:
    print(f"bench: {title} ...", flush=True)
    return time.perf_counter()


def _done(started: float) -> None:
    print(f"bench:   done in {time.perf_counter() - started:.1f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = LoadSettings(repetitions=args.repetitions)
    if args.quick:
        settings = LoadSettings(repetitions=args.repetitions, latency_calls=200, warmup_calls=50,
                                throughput_s=0.5, micro_calls=2000)
    logs = args.out / "logs"
    results: dict[str, Any] = {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "grpcio": importlib.metadata.version("grpcio"),
            "redis-py": importlib.metadata.version("redis"),
            "platform": platform.platform(),
        },
        "settings": {**settings.__dict__, "concurrency": [1, 16, 64]},
    }

    started = _step("floor: plain grpc.aio, one hop")
    results["floor"] = {"one_hop": floor.measure_one_hop(settings)}
    _done(started)

    started = _step(f"start-up: local stack x{settings.repetitions}")
    local_startup, target = stack.measure_startup(logs, settings.repetitions)
    _done(started)
    try:
        started = _step("SubmitOrder in turns: the floor's two hops; the local stack, tracing off; a second local "
                        "stack, tracing on (OTLP receiver in its own process), default sampling and every order traced")
        paths = stack.measure_submit_order_paths(target, logs, settings)
        results["floor"]["two_hop"] = paths.pop("floor_two_hop")
        results["submit_order"] = paths
        _done(started)
        started = _step(f"SubmitOrder with {', '.join(map(str, stack.ACTIVE_SCENARIOS))} scenarios active")
        results["submit_order"]["scenarios"] = stack.measure_scenario_cost(target, settings)
        _done(started)
        started = _step("discovery and configuration")
        results["discovery"] = asyncio.run(stack.measure_discovery(target.redis_url, settings))
        results["configuration"] = asyncio.run(
            stack.measure_configuration(target.redis_url, stack.config_endpoint(target), settings)
        )
        _done(started)
        started = _step("failure detection: SIGKILL one of two risk-monitors, then FLUSHALL")
        results["failure"] = stack.measure_failure_detection(target)
        _done(started)
    finally:
        target.stop_all()

    started = _step("SubmitOrder through a third local stack in secure mode (mTLS, authorization), tracing off")
    results["submit_order"]["mtls"] = stack.measure_real_path_secure(logs, settings)
    _done(started)

    started = _step("start-up: docker stack")
    results["startup"] = {"local": local_startup, "docker": stack.measure_docker_startup(settings.repetitions)}
    _done(started)

    if args.skip_suite:
        results["suite"] = {"reason": "--skip-suite"}
    else:
        targets = ["local"] + (["docker"] if default_target_name()[0] == "docker" else [])
        started = _step(f"acceptance suite on {' and '.join(targets)} at --jobs {', '.join(map(str, suite.JOBS))}")
        results["suite"] = suite.measure_suite(targets, args.out)
        _done(started)

    found = report.goals(results)
    print()
    print(report.render(results, found))
    report.write_json(results, found, args.out / "results.json")
    report.write_chart(results, args.out / "results.png")
    print(f"\nbench: wrote {args.out / 'results.json'} and {args.out / 'results.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
