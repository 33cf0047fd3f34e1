"""The ``python -m airflow_provider_assemblyai.testing serve`` command, as a real subprocess."""

from __future__ import annotations

import json
import os
import queue
import shlex
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from airflow_provider_assemblyai.testing.__main__ import build_parser

CLI = [sys.executable, "-m", "airflow_provider_assemblyai.testing"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


@contextmanager
def serving(*args: str) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """Run ``serve`` with ``args`` until it prints READY; kill it afterwards."""
    proc = subprocess.Popen(
        [*CLI, "serve", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    )
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


@pytest.fixture
def served() -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    args = ["--port", "0", "--seed", "25", "--seed-eu", "3", "--api-key", "demo-key", "--latency-ms", "1"]
    args += ["--rate-limit", "20000/300", "--queued-seconds", "0", "--processing-seconds", "0"]
    with serving(*args) as running:
        yield running


def base_urls(lines: list[str]) -> dict[str, str]:
    """``{"US": url, "EU": url}`` from the ``US: <url>`` and ``EU: <url>`` lines."""
    return {line.split(":", 1)[0]: line.split()[1] for line in lines if line.startswith(("US:", "EU:"))}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=ENV, timeout=60, check=False)


def test_cli_serves_and_stops_on_sigterm(served: tuple[subprocess.Popen[str], list[str]]) -> None:
    proc, lines = served
    assert lines[-1] == "READY"
    urls = base_urls(lines)
    assert urls["US"].startswith("http://127.0.0.1:")
    assert urls["EU"].startswith("http://127.0.0.1:")
    assert urls["US"] != urls["EU"]
    exports = dict(shlex.split(line)[1].split("=", 1) for line in lines if line.startswith("export "))
    assert {name: json.loads(value) for name, value in exports.items()} == {
        f"AIRFLOW_CONN_ASSEMBLYAI_{name}": {
            "conn_type": "assemblyai",
            "password": "demo-key",
            "extra": {"region": region, "base_url": urls[region.upper()]},
        }
        for name, region in (("DEFAULT", "us"), ("EU", "eu"))
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


def test_seed_adds_transcripts_to_the_running_emulator(
    served: tuple[subprocess.Popen[str], list[str]],
) -> None:
    urls = base_urls(served[1])
    headers = {"Authorization": "demo-key"}

    added = run_cli("seed", "--url", urls["US"], "--region", "eu", "--count", "4", "--age-days", "120")
    in_progress = run_cli(
        "seed", "--url", urls["EU"], "--status", "processing", "--processing-seconds", "3600"
    )

    assert added.returncode == 0, added.stderr
    assert added.stderr == "Added 4 completed transcripts to region eu, created 120 days ago:\n"
    eu_ids = added.stdout.split()
    assert len(eu_ids) == 4
    for tid in eu_ids:  # old: not listed (90-day window), but there, and deletable by id
        body = httpx.get(f"{urls['EU']}/v2/transcript/{tid}", headers=headers).json()
        assert body["status"] == "completed"
    listed = httpx.get(urls["EU"] + "/v2/transcript", params={"limit": 100}, headers=headers).json()
    assert not set(eu_ids) & {t["id"] for t in listed["transcripts"]}
    (us_id,) = in_progress.stdout.split()
    us_body = httpx.get(f"{urls['US']}/v2/transcript/{us_id}", headers=headers).json()
    assert us_body["status"] == "processing"


def test_seed_errors_are_one_line(served: tuple[subprocess.Popen[str], list[str]]) -> None:
    url = base_urls(served[1])["US"]
    no_count = run_cli("seed", "--url", url, "--count", "0")
    bad = run_cli("seed", "--url", url, "--processing-seconds", "5")  # completed ones are done already
    with socket.socket() as unused:  # bound, not listening: connections are refused
        unused.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{unused.getsockname()[1]}"
        nobody = run_cli("seed", "--url", nowhere)

    assert no_count.stderr == "error: --count must be at least 1, got 0\n"
    assert bad.stderr == "error: --processing-seconds only applies to queued or processing transcripts\n"
    assert nobody.stderr.startswith(f"error: no emulator answers at {nowhere}")
    assert "`python -m airflow_provider_assemblyai.testing serve`" in nobody.stderr
    for result in (no_count, bad, nobody):
        assert (result.returncode, result.stdout, result.stderr.count("\n")) == (1, "", 1)


def test_a_busy_port_is_one_line_suggesting_port_0() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("serve", "--port", str(port), "--eu-port", "0")

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"error: US port {port} on 127.0.0.1 is already in use; "
        "pick free ports with --port/--eu-port, or --port 0 for any free port\n"
    )


def test_link_base_url_flag_writes_links_on_another_host() -> None:
    with serving("--port", "0", "--seed", "3", "--link-base-url", "https://api.assemblyai.com") as (_, lines):
        url = base_urls(lines)["US"]
        page = httpx.get(url + "/v2/transcript?limit=1", headers={"Authorization": "demo-key"}).json()
    assert page["page_details"]["prev_url"].startswith(
        "https://api.assemblyai.com/v2/transcript?limit=1&before_id="
    )
    bad = run_cli("serve", "--port", "0", "--link-base-url", "api.assemblyai.com")
    assert (bad.returncode, bad.stderr.count("\n")) == (2, 1)
    assert bad.stderr.startswith("error: link_base_url must be an http(s) base URL")


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
