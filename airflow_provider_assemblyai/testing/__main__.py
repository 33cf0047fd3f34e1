"""CLI: ``python -m airflow_provider_assemblyai.testing serve --port 8765 --seed 50 --api-key demo-key``.

Runs in the foreground until SIGINT/SIGTERM. Prints the US/EU base URLs, a ready-to-paste
``export AIRFLOW_CONN_ASSEMBLYAI_DEFAULT=...`` line and finally ``READY``.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import timedelta
from types import FrameType

from airflow_provider_assemblyai.testing.emulator import AssemblyAIEmulator
from airflow_provider_assemblyai.testing.server import is_loopback

__all__ = ["build_parser", "main"]


def _rate_limit(value: str) -> tuple[int, float]:
    try:
        requests, _, seconds = value.partition("/")
        parsed = (int(requests), float(seconds or "1"))
    except ValueError:
        raise argparse.ArgumentTypeError("expected REQUESTS/SECONDS, e.g. 20000/300") from None
    if parsed[0] < 1 or parsed[1] <= 0:
        raise argparse.ArgumentTypeError("expected positive REQUESTS/SECONDS")
    return parsed


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (``serve`` sub-command)."""
    parser = argparse.ArgumentParser(prog="python -m airflow_provider_assemblyai.testing")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the US and EU emulator servers in the foreground")
    serve.add_argument(
        "--host", default=None, help="bind address (default 127.0.0.1; loopback only unless set)"
    )
    serve.add_argument("--port", type=int, default=8765, help="US port (default 8765; 0 = any free port)")
    serve.add_argument("--eu-port", type=int, default=None, help="EU port (default --port + 1)")
    serve.add_argument("--api-key", action="append", default=None, help="accepted key (repeatable; demo-key)")
    serve.add_argument("--seed", type=int, default=0, metavar="N", help="seed N transcripts in the US region")
    serve.add_argument(
        "--seed-eu", type=int, default=0, metavar="N", help="seed N transcripts in the EU region"
    )
    serve.add_argument("--seed-span-days", type=float, default=60.0, help="spread seeded creation dates (60)")
    serve.add_argument("--random-seed", type=int, default=0, help="seed of the random generator (0)")
    serve.add_argument("--latency-ms", type=float, default=0.0, help="per-request latency in ms")
    serve.add_argument("--latency-jitter-ms", type=float, default=0.0, help="latency jitter (+/- ms)")
    serve.add_argument(
        "--rate-limit", type=_rate_limit, default=None, help="REQUESTS/SECONDS, e.g. 20000/300"
    )
    serve.add_argument("--queued-seconds", type=float, default=1.0, help="time a new transcript stays queued")
    serve.add_argument("--processing-seconds", type=float, default=3.0, help="time it then stays processing")
    serve.add_argument(
        "--error-rate", type=float, default=0.0, help="share of new transcripts ending in error"
    )
    serve.add_argument(
        "--allow-delete-in-progress", action="store_true", help="let queued/processing be deleted"
    )
    serve.add_argument(
        "--list-retention-days", type=float, default=90.0, help="list only this recent (90; 0 = everything)"
    )
    serve.add_argument("--access-log", action="store_true", help="print uvicorn access logs")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    host = args.host if args.host is not None else "127.0.0.1"
    if not is_loopback(host):
        print(
            f"warning: binding non-loopback host {host}; the emulator has no real security", file=sys.stderr
        )
    eu_port = args.eu_port if args.eu_port is not None else (args.port + 1 if args.port else 0)
    keys = tuple(args.api_key or ["demo-key"])
    emu = AssemblyAIEmulator(
        api_keys=keys,
        host=host,
        port=args.port,
        eu_port=eu_port,
        queued_seconds=args.queued_seconds,
        processing_seconds=args.processing_seconds,
        error_rate=args.error_rate,
        allow_delete_in_progress=args.allow_delete_in_progress,
        list_retention_days=args.list_retention_days or None,
        latency_ms=args.latency_ms,
        latency_jitter_ms=args.latency_jitter_ms,
        rate_limit=args.rate_limit,
        seed=args.random_seed,
        allow_non_loopback=args.host is not None,
        log_level="info" if args.access_log else "warning",
        access_log=args.access_log,
    )
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
    emu.start()
    try:
        print(f"AssemblyAI emulator (api keys: {', '.join(keys)})")
        print(f"US: {emu.base_url('us')}  ({args.seed} seeded transcripts)")
        print(f"EU: {emu.base_url('eu')}  ({args.seed_eu} seeded transcripts)")
        print(f"export AIRFLOW_CONN_ASSEMBLYAI_DEFAULT={shlex.quote(emu.connection_json('us'))}")
        print("READY", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        emu.stop()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
