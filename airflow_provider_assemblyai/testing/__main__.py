"""CLI: ``python -m airflow_provider_assemblyai.testing serve --port 8765 --seed 50 --api-key demo-key``.

``serve`` runs in the foreground until SIGINT/SIGTERM. It prints the US/EU base URLs, ready-to-paste
``export AIRFLOW_CONN_ASSEMBLYAI_DEFAULT=...`` (US) and ``AIRFLOW_CONN_ASSEMBLYAI_EU=...`` lines and
finally ``READY``. ``seed`` adds transcripts to a running emulator (``--region eu --count 20
--age-days 120``) through its admin endpoint, and prints their ids.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import timedelta
from types import FrameType
from typing import Any

from airflow_provider_assemblyai.testing.admin import ADMIN_PREFIX
from airflow_provider_assemblyai.testing.config import EmulatorConfig
from airflow_provider_assemblyai.testing.emulator import AssemblyAIEmulator
from airflow_provider_assemblyai.testing.server import is_loopback

DEFAULT_PORT = 8765
DEFAULT_KEY = "demo-key"
#: The connection ids the printed ``export`` lines define, per region.
CONN_IDS = {"us": "assemblyai_default", "eu": "assemblyai_eu"}

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (``serve`` and ``seed`` sub-commands)."""
    parser = argparse.ArgumentParser(prog="python -m airflow_provider_assemblyai.testing")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the US and EU emulator servers in the foreground")
    serve.add_argument(
        "--host", default=None, help="bind address (default 127.0.0.1; loopback only unless set)"
    )
    serve.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"US port (default {DEFAULT_PORT}; 0 = any free port)"
    )
    serve.add_argument("--eu-port", type=int, default=None, help="EU port (default --port + 1)")
    serve.add_argument(
        "--api-key", action="append", default=None, help=f"accepted key (repeatable; {DEFAULT_KEY})"
    )
    serve.add_argument("--seed", type=int, default=0, metavar="N", help="seed N transcripts in the US region")
    serve.add_argument(
        "--seed-eu", type=int, default=0, metavar="N", help="seed N transcripts in the EU region"
    )
    serve.add_argument("--seed-span-days", type=float, default=60.0, help="spread seeded creation dates (60)")
    EmulatorConfig.add_arguments(serve)  # --random-seed, --latency-ms, --rate-limit, ...
    serve.add_argument("--access-log", action="store_true", help="print uvicorn access logs")

    seed = sub.add_parser("seed", help="add transcripts to a running emulator")
    seed.add_argument(
        "--url",
        default=f"http://127.0.0.1:{DEFAULT_PORT}",
        help=f"the running emulator (either region's URL; default http://127.0.0.1:{DEFAULT_PORT})",
    )
    seed.add_argument("--region", choices=("us", "eu"), default="us", help="region to add them to (us)")
    seed.add_argument("--count", type=int, default=1, help="how many transcripts (1)")
    seed.add_argument("--age-days", type=float, default=0.0, help="created this many days ago (0)")
    seed.add_argument(
        "--status",
        choices=("queued", "processing", "completed", "error", "deleted"),
        default="completed",
        help="their status (completed)",
    )
    seed.add_argument(
        "--processing-seconds",
        type=float,
        default=None,
        help="queued/processing ones finish this many seconds from now (default: they stay in progress)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.command == "seed":
        return _seed(args)
    return _serve(args)


def _serve(args: argparse.Namespace) -> int:
    host = args.host if args.host is not None else "127.0.0.1"
    if not is_loopback(host):
        print(
            f"warning: binding non-loopback host {host}; the emulator has no real security", file=sys.stderr
        )
    eu_port = args.eu_port if args.eu_port is not None else (args.port + 1 if args.port else 0)
    keys = tuple(args.api_key or [DEFAULT_KEY])
    try:
        emu = AssemblyAIEmulator(
            config=EmulatorConfig.from_arguments(args),
            api_keys=keys,
            host=host,
            port=args.port,
            eu_port=eu_port,
            allow_non_loopback=args.host is not None,
            log_level="info" if args.access_log else "warning",
            access_log=args.access_log,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    span = timedelta(days=args.seed_span_days)
    if args.seed:
        emu.seed(args.seed, "us", span=span)
    if args.seed_eu:
        emu.seed(args.seed_eu, "eu", span=span)

    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        emu.start()
    except OSError as error:
        hint = "pick free ports with --port/--eu-port, or --port 0 for any free port"
        print(f"error: {error.strerror or error}; {hint}", file=sys.stderr)
        return 1
    try:
        print(f"AssemblyAI emulator (api keys: {', '.join(keys)})")
        print(f"US: {emu.base_url('us')}  ({args.seed} seeded transcripts)")
        print(f"EU: {emu.base_url('eu')}  ({args.seed_eu} seeded transcripts)")
        for region, conn_id in CONN_IDS.items():
            env = emu.connection_env(region, conn_id=conn_id)
            print("".join(f"export {name}={shlex.quote(value)}" for name, value in env.items()))
        print(
            f"Add transcripts: python -m airflow_provider_assemblyai.testing seed --url {emu.base_url('us')}"
        )
        print("READY", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        emu.stop()
    print("stopped", flush=True)
    return 0


def _seed(args: argparse.Namespace) -> int:
    if args.count < 1:
        print(f"error: --count must be at least 1, got {args.count}", file=sys.stderr)
        return 1
    if args.processing_seconds is not None and args.status not in ("queued", "processing"):
        print("error: --processing-seconds only applies to queued or processing transcripts", file=sys.stderr)
        return 1
    # One spec per transcript, each a second older than the one before (newest first in the list).
    spec: dict[str, Any] = {"region": args.region, "status": args.status}
    if args.status == "deleted":
        spec.update(status="completed", deleted=True)
    if args.processing_seconds is not None:
        spec["completes_in"] = args.processing_seconds
    body = [{**spec, "age_days": args.age_days + i / 86_400} for i in range(args.count)]
    url = args.url.rstrip("/") + ADMIN_PREFIX + "transcripts"
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            added = json.load(response)
    except urllib.error.HTTPError as error:
        print(f"error: the emulator refused: HTTP {error.code}: {_error_text(error)}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        print(
            f"error: no emulator answers at {args.url} ({reason}); start one with "
            "`python -m airflow_provider_assemblyai.testing serve` or pass its URL with --url",
            file=sys.stderr,
        )
        return 1
    print(
        f"Added {len(added['ids'])} {args.status} transcripts to region {args.region}, "
        f"created {args.age_days:g} days ago:",
        file=sys.stderr,
    )
    print("\n".join(added["ids"]), flush=True)
    return 0


def _error_text(error: urllib.error.HTTPError) -> str:
    try:
        return str(json.load(error)["error"])
    except (ValueError, KeyError, TypeError):
        return error.reason or "no detail"


if __name__ == "__main__":
    sys.exit(main())
