"""`python -m acceptance.stack up|down|status|url`: a local stack that outlives the command (`make stack`).

`up [--manifest TOML]` spawns a supervisor in its own session; the supervisor runs the local target of
the manifest's stack (the reference ecosystem by default, or the manifest's start commands), writes
.stack/state.json and waits for SIGTERM. The services are the supervisor's children, so they die
with the supervisor (even by SIGKILL) and not with the `up` command. `down` sends the supervisor
SIGTERM and waits until it and the services it recorded are gone.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from acceptance.health import HealthCheckError, check
from acceptance.manifest import ManifestError, load_manifest
from acceptance.pki import Pki
from acceptance.processes import proc_stat
from acceptance.transport import PLAINTEXT, Transport
from acceptance.waits import WaitTimeout, wait_until

REPO_ROOT = Path(__file__).resolve().parents[1]
STATE_FILE = "state.json"
SUPERVISOR_LOG = "supervisor.log"


def _read_state(state_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((state_dir / STATE_FILE).read_text())
    except FileNotFoundError:
        return None


def _write_state(state_dir: Path, state: dict[str, Any]) -> None:
    # Written whole then renamed: `up` polls for the file and must never read half of it.
    partial = state_dir / (STATE_FILE + ".partial")
    partial.touch(mode=0o600)  # it holds the suite's Redis password
    partial.write_text(json.dumps(state, indent=2))
    partial.replace(state_dir / STATE_FILE)


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie waiting for a parent that never reaps it."""
    try:
        return proc_stat(pid)[0] != "Z"
    except FileNotFoundError:
        return False


def _is_supervisor(pid: int) -> bool:
    # A stale state file may name a pid the kernel has since given to an unrelated process.
    try:
        return _alive(pid) and b"acceptance.stack" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def _print_state(state: dict[str, Any]) -> None:
    width = max(len(service) for service in [*state["endpoints"], "redis"])
    print(f"stack supervisor pid {state['pid']} ({state['manifest']}, {state.get('security', 'insecure')}), "
          f"service logs in {state['log_dir']}")
    if state.get("pki_dir"):
        print(f"  certificates (the suite's: suite.pem, admin.pem) in {state['pki_dir']}")
    print(f"  {'redis':<{width}}  {state['redis_url']}")
    for service, endpoints in state["endpoints"].items():
        print(f"  {service:<{width}}  {', '.join(endpoints) or '-'}")


def up(state_dir: Path, timeout: float, manifest: Path | None) -> int:
    try:
        declared = load_manifest(manifest)
    except ManifestError as exc:
        print(exc, file=sys.stderr)
        return 2
    not_startable = [s.name for s in declared.services if s.start is None]
    if not declared.is_reference and not_startable:
        print(f"{declared.path}: {', '.join(not_startable)} has no [services.start] command, so `up` cannot start "
              "it; start the stack yourself and run the suite with TARGET=external", file=sys.stderr)
        return 2
    state = _read_state(state_dir)
    if state is not None and _is_supervisor(state["pid"]):
        print("a stack is already up (stop it with `python -m acceptance.stack down`):")
        _print_state(state)
        return 1
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / STATE_FILE).unlink(missing_ok=True)
    log_path = state_dir / SUPERVISOR_LOG
    with log_path.open("wb") as log:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "acceptance.stack", "--state-dir", str(state_dir), "supervise",
             *(["--manifest", str(manifest)] if manifest else [])],
            cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        exit_code, state = wait_until(
            lambda: (supervisor.poll(), _read_state(state_dir)),
            lambda seen: seen[0] is not None or seen[1] is not None,
            timeout=timeout,
            what=f"the stack supervisor (pid {supervisor.pid}) writes {state_dir / STATE_FILE}",
            interval=0.1,
        )
    except WaitTimeout as exc:
        supervisor.terminate()
        supervisor.wait(timeout=30)
        print(f"{exc}\n--- {log_path} ---\n{_tail(log_path)}", file=sys.stderr)
        return 1
    if state is None:
        print(f"the stack did not start (supervisor exit code {exit_code}):\n{_tail(log_path)}", file=sys.stderr)
        return 1
    _print_state(state)
    print("\nrun the suite against it:")
    manifest_arg = f" -D manifest={manifest}" if manifest else ""
    pki_arg = f" -D pki_dir={state['pki_dir']}" if state.get("pki_dir") else ""
    print(f"  behave -D target=external{manifest_arg}{pki_arg} -D redis_url={state['redis_url']} features/")
    print("stop it:\n  make stack-down   (python -m acceptance.stack down)")
    return 0


def down(state_dir: Path, timeout: float) -> int:
    state = _read_state(state_dir)
    if state is None:
        print("no stack is up")
        return 0
    pids = [state["pid"], *state["service_pids"].values()]
    if _is_supervisor(state["pid"]):
        os.kill(state["pid"], signal.SIGTERM)
    try:
        wait_until(
            lambda: [pid for pid in pids if _alive(pid)],
            lambda remaining: not remaining,
            timeout=timeout,
            what=f"the stack supervisor and its services ({', '.join(map(str, pids))}) exit",
            interval=0.1,
        )
    except WaitTimeout as exc:
        print(f"{exc}\n--- {state_dir / SUPERVISOR_LOG} ---\n{_tail(state_dir / SUPERVISOR_LOG)}", file=sys.stderr)
        return 1
    (state_dir / STATE_FILE).unlink(missing_ok=True)
    print(f"stack down (supervisor pid {state['pid']})")
    return 0


def status(state_dir: Path) -> int:
    state = _read_state(state_dir)
    if state is None:
        print("no stack is up")
        return 1
    if not _is_supervisor(state["pid"]):
        print(f"stale {state_dir / STATE_FILE}: supervisor pid {state['pid']} is gone")
        return 1
    _print_state(state)
    serving = True
    transport = Transport(Pki(Path(state["pki_dir"]))) if state.get("pki_dir") else PLAINTEXT
    for service in load_manifest(state["manifest"]).services:
        for endpoint in state["endpoints"].get(service.name, []):
            try:
                answer = check(endpoint, service.health_service, timeout=2.0, transport=transport, server=service.name)
            except HealthCheckError as exc:
                answer = f"{exc.code.name} (no health answer)"
            serving = serving and answer == "SERVING"
            print(f"  health {service.name} {endpoint}: {answer}")
    return 0 if serving else 1


def url(state_dir: Path) -> int:
    """Print the Redis URL of the stack that is up (for scripts: `-D redis_url=$(... url)`)."""
    state = _read_state(state_dir)
    if state is None or not _is_supervisor(state["pid"]):
        print("no stack is up", file=sys.stderr)
        return 1
    print(state["redis_url"])
    return 0


def supervise(state_dir: Path, manifest_path: Path | None) -> int:
    """Run the stack until SIGTERM or SIGINT, then stop it; a start failure ends here with its traceback."""
    from acceptance.targets import make_target

    def request_stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    manifest = load_manifest(manifest_path)
    target = make_target("local", manifest)
    try:
        target.start()
        endpoints = {
            service: [handle.endpoint for handle in target.instances(service)] for service in manifest.service_names
        }
        _write_state(state_dir, {
            "pid": os.getpid(),
            "manifest": str(manifest.path),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "redis_url": target.redis_url,
            "endpoints": endpoints,
            "service_pids": target.pids(),  # type: ignore[attr-defined]
            "log_dir": str(target.log_dir),
            "security": target.transport.mode,
            "pki_dir": str(target.transport.pki.directory) if target.transport.pki else "",
        })
        while True:
            signal.pause()
    finally:
        # A second signal must not cut the cleanup short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        target.stop_all()
        (state_dir / STATE_FILE).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m acceptance.stack", description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, default=REPO_ROOT / ".stack", help="where state.json lives")
    commands = parser.add_subparsers(dest="command", required=True)
    up_parser = commands.add_parser("up", help="start a local stack that keeps running after this command")
    up_parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait until it is SERVING")
    up_parser.add_argument("--manifest", type=Path, help="the stack to start (default: the reference ecosystem)")
    down_parser = commands.add_parser("down", help="stop the stack `up` started")
    down_parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait until it is gone")
    commands.add_parser("status", help="print the stack's endpoints and their health")
    commands.add_parser("url", help="print the Redis URL of the stack that is up")
    supervise_parser = commands.add_parser("supervise", help="internal: the process `up` starts")
    supervise_parser.add_argument("--manifest", type=Path)
    args = parser.parse_args(argv)
    if args.command == "up":
        return up(args.state_dir, args.timeout, args.manifest)
    if args.command == "down":
        return down(args.state_dir, args.timeout)
    if args.command == "status":
        return status(args.state_dir)
    if args.command == "url":
        return url(args.state_dir)
    return supervise(args.state_dir, args.manifest)


if __name__ == "__main__":
    sys.exit(main())
