"""The ``python -m airflow_provider_assemblyai.testing serve`` command, as a real subprocess."""

from __future__ import annotations

import json
import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator

import httpx
import pytest

from airflow_provider_assemblyai.testing.__main__ import build_parser


@pytest.fixture
def served() -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    cmd = [
        sys.executable,
        "-m",
        "airflow_provider_assemblyai.testing",
        "serve",
        "--port",
        "0",
        "--seed",
        "25",
        "--seed-eu",
        "3",
        "--api-key",
        "demo-key",
        "--latency-ms",
        "1",
        "--rate-limit",
        "20000/300",
        "--queued-seconds",
        "0",
        "--processing-seconds",
        "0",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    try:
        while True:
            line = lines.get(timeout=20)
            if line is None:
                raise AssertionError(f"exited early: {seen} {proc.stderr.read() if proc.stderr else ''}")
            seen.append(line)
            if line == "READY":
                break
        yield proc, seen
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_cli_serves_and_stops_on_sigterm(served: tuple[subprocess.Popen[str], list[str]]) -> None:
    proc, lines = served
    assert lines[-1] == "READY"
    urls = {line.split(":", 1)[0]: line.split()[1] for line in lines if line.startswith(("US:", "EU:"))}
    assert urls["US"].startswith("http://127.0.0.1:")
    assert urls["EU"].startswith("http://127.0.0.1:")
    assert urls["US"] != urls["EU"]
    (export,) = [line for line in lines if line.startswith("export AIRFLOW_CONN_ASSEMBLYAI_DEFAULT=")]
    conn = json.loads(shlex.split(export.split("=", 1)[1])[0])
    assert conn == {
        "conn_type": "assemblyai",
        "password": "demo-key",
        "extra": {"region": "us", "base_url": urls["US"]},
    }

    headers = {"Authorization": "demo-key"}
    us = httpx.get(urls["US"] + "/v2/transcript", params={"limit": 100}, headers=headers).json()
    eu = httpx.get(urls["EU"] + "/v2/transcript", params={"limit": 100}, headers=headers).json()
    assert len(us["transcripts"]) == 25
    assert len(eu["transcripts"]) == 3
    first = us["transcripts"][0]["id"]
    assert (
        httpx.delete(f"{urls['US']}/v2/transcript/{first}", headers=headers).json()["text"]
        == "Deleted by user."
    )
    assert httpx.get(urls["US"] + "/v2/transcript").status_code == 401

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert proc.stdout is not None
    with pytest.raises(httpx.ConnectError):
        httpx.get(urls["US"] + "/v2/transcript", headers=headers)


def test_cli_parses_flags() -> None:
    args = build_parser().parse_args(
        ["serve", "--rate-limit", "100/60", "--eu-port", "9999", "--host", "::1"]
    )
    assert args.rate_limit == (100, 60.0)
    assert args.eu_port == 9999
    assert args.host == "::1"
    defaults = build_parser().parse_args(["serve"])
    assert (defaults.port, defaults.eu_port, defaults.host, defaults.seed) == (8765, None, None, 0)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--rate-limit", "lots"])
