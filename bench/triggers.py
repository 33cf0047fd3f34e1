"""
Trigger fan-in: N TranscriptStatusTriggers versus N HTTP-provider triggers, in one event loop each.

Three processes, so each one's CPU and memory are its own: the emulator behind counting proxies
(:mod:`bench._emulator`); the side under test (``python -m bench.triggers side provider|http``),
which imports, records its baseline (``getrusage``, and the RSS with the kernel's peak mark
reset), waits for the transcript ids, runs every trigger to its first event in one ``asyncio``
loop and reports wall time, CPU seconds, peak RSS growth, event times and the events; and this
process, which creates the transcripts (finishing at staggered times), counts requests and
connections in the emulator and checks every event.

The HTTP side is ``HttpEventTrigger`` with a ``response_check_path`` reading the JSON status: the
only HTTP-provider trigger that can wait for a status in a 200 body (see docs/performance.md).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from bench._emulator import (
    API_KEY,
    EmulatorProcess,
    Protocol,
    child_env,
    peak_rss,
    project_root,
    start_peak_rss,
    usage,
)

HTTP_CONN_ID = "assemblyai_http"
CHECK_MODULE = "assemblyai_bench_check"
SIDE_TIMEOUT = 900.0

FULL: dict[str, Any] = {
    "triggers": 1000,
    "finish_min": 5.0,
    "finish_max": 20.0,
    "poll_interval": 2.0,
    "schemes": ("https", "http"),
}
SMOKE: dict[str, Any] = {
    "triggers": 20,
    "finish_min": 0.5,
    "finish_max": 2.0,
    "poll_interval": 0.3,
    "schemes": ("https",),
}


# --------------------------------------------------------------------------- side process


async def _provider_events(ids: list[str], poll_interval: float) -> list[dict[str, Any]]:
    from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook
    from airflow_provider_assemblyai.triggers.assemblyai import TranscriptStatusTrigger

    deadline = time.time() + SIDE_TIMEOUT
    triggers = [
        TranscriptStatusTrigger(
            transcript_id=tid,
            assemblyai_conn_id="assemblyai_bench",
            poll_interval=poll_interval,
            end_time=deadline,
        )
        for tid in ids
    ]
    try:
        return await asyncio.gather(*(_first_event(trigger) for trigger in triggers))
    finally:
        await AssemblyAIHook.aclose_shared_clients()


async def _http_events(ids: list[str], poll_interval: float) -> list[dict[str, Any]]:
    from airflow.providers.http.triggers.http import HttpEventTrigger

    triggers = [
        HttpEventTrigger(
            response_check_path=f"{CHECK_MODULE}.transcript_is_done",
            http_conn_id=HTTP_CONN_ID,
            method="GET",
            endpoint=f"v2/transcript/{tid}",
            poll_interval=poll_interval,
        )
        for tid in ids
    ]
    return await asyncio.gather(*(_first_event(trigger) for trigger in triggers))


async def _first_event(trigger: Any) -> dict[str, Any]:
    """Run a trigger until its first event, as the triggerer does; return the payload (and when)."""
    events = trigger.run()
    try:
        async for event in events:
            payload: dict[str, Any] = event.payload
            payload["_received_at"] = time.time()
            return payload
    finally:
        await events.aclose()
    raise RuntimeError(f"{trigger!r} ended without an event")


def _run_side(kind: str) -> None:
    """One side: import, report the baseline, run every trigger to its event, report the costs."""
    if kind == "provider":
        import airflow_provider_assemblyai.hooks.assemblyai
        import airflow_provider_assemblyai.triggers.assemblyai  # noqa: F401
    else:
        import airflow.providers.http.triggers.http  # noqa: F401

        __import__(CHECK_MODULE)
    protocol = Protocol()
    gc.collect()
    cpu_before, rss_before = usage()[0], start_peak_rss()
    protocol.reply({"ready": True})
    job = json.loads(sys.stdin.readline())
    os.environ.update(job["env"])  # the connections: read when the triggers run, as in a triggerer
    started = time.perf_counter()
    runner = _provider_events if kind == "provider" else _http_events
    events = asyncio.run(runner(job["ids"], job["poll_interval"]))
    wall = time.perf_counter() - started
    cpu_after, rss_after = usage()[0], peak_rss()
    protocol.reply(
        {
            "wall_s": wall,
            "cpu_s": cpu_after - cpu_before,
            "rss_growth_mb": (rss_after - rss_before) / 1024,
            "peak_rss_mb": rss_after / 1024,
            "wrong": _wrong_events(kind, job["ids"], job["finals"], events),
            "lags": [
                event.pop("_received_at") - at for event, at in zip(events, job["finish_at"], strict=True)
            ],
        }
    )


def _wrong_events(kind: str, ids: list[str], finals: list[str], events: list[dict[str, Any]]) -> list[str]:
    """Describe every event that is not the right one for its transcript (empty: all right)."""
    wrong = []
    for tid, final, event in zip(ids, finals, events, strict=True):
        if kind == "provider":
            expected = {
                "status": "success" if final == "completed" else "failure",
                "transcript_status": final,
            }
            ok = event.get("transcript_id") == tid and all(event.get(k) == v for k, v in expected.items())
        else:
            body = json.loads(_response_body(event)) if event.get("status") == "success" else {}
            ok = body.get("id") == tid and body.get("status") == final
        if not ok:
            wrong.append(f"{tid} (expected {final}): {str(event)[:200]}")
    return wrong


def _response_body(event: dict[str, Any]) -> str:
    import base64

    return base64.standard_b64decode(event["response"]["content"]).decode()


CHECK_SOURCE = """
\"\"\"HttpEventTrigger's response check: done once the transcript is completed or error.\"\"\"
import json


async def transcript_is_done(response):
    return json.loads(response.content)["status"] in ("completed", "error")
"""


def _start_side(kind: str, check_dir: str, cert_path: str) -> subprocess.Popen[str]:
    env = child_env({"SSL_CERT_FILE": cert_path})  # httpx and aiohttp both trust it
    env["PYTHONPATH"] = os.pathsep.join([check_dir, env["PYTHONPATH"]])
    return subprocess.Popen(
        [sys.executable, "-m", "bench.triggers", "side", kind],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=project_root(),
        env=env,
    )


def _side_env(emulator: EmulatorProcess, scheme: str) -> dict[str, str]:
    """Both sides' Airflow connections, through the counting proxy of ``scheme``."""
    url = emulator.url(scheme)
    http_conn = {
        "conn_type": "http",
        "host": "127.0.0.1",
        "port": int(url.rsplit(":", 1)[1]),
        "schema": scheme,
        "extra": {"Authorization": API_KEY},
    }
    return {
        "AIRFLOW_CONN_ASSEMBLYAI_BENCH": emulator.connection_json(scheme),
        f"AIRFLOW_CONN_{HTTP_CONN_ID.upper()}": json.dumps(http_conn),
    }


def _measure_side(
    side: subprocess.Popen[str], emulator: EmulatorProcess, params: dict[str, Any], scheme: str
) -> dict[str, Any]:
    assert side.stdin is not None
    assert side.stdout is not None
    try:
        if not side.stdout.readline():
            raise RuntimeError(f"a side exited before it was ready (code {side.wait()})")
        before = emulator.call("stats")
        job = emulator.call(
            "create", n=params["triggers"], finish_min=params["finish_min"], finish_max=params["finish_max"]
        )
        job.update(poll_interval=params["poll_interval"], env=_side_env(emulator, scheme))
        side.stdin.write(json.dumps(job) + "\n")
        side.stdin.flush()
        line = side.stdout.readline()
        if not line:
            raise RuntimeError(f"a side failed (code {side.wait()})")
        result: dict[str, Any] = json.loads(line)
        after = emulator.call("stats")
    finally:
        side.stdin.close()
        try:
            side.wait(60)
        except subprocess.TimeoutExpired:
            side.kill()
            side.wait()
    for key in ("gets", "lists", "connections", "not_ok", "cpu_s"):
        result[f"emulator_{key}"] = after[key] - before[key]
    return result


SIDES = {
    "provider": "TranscriptStatusTrigger (this provider)",
    "http": "HttpEventTrigger + response_check (HTTP provider)",
}


def run(smoke: bool) -> list[dict[str, Any]]:
    """
    Run each side (over HTTPS, then plain HTTP) and return one row each; raise if anything is wrong.

    Every process starts at once (imports overlap); a side waits idle until its turn.

    :param smoke: a tiny version (20 triggers, sub-second polls, HTTPS only) that checks results only.
    """
    params = SMOKE if smoke else FULL
    cases = [(scheme, kind) for scheme in params["schemes"] for kind in SIDES]
    rows = []
    with tempfile.TemporaryDirectory() as check_dir, EmulatorProcess() as emulator:
        Path(check_dir, f"{CHECK_MODULE}.py").write_text(textwrap.dedent(CHECK_SOURCE))
        sides = [_start_side(kind, check_dir, emulator.cert_path) for _, kind in cases]
        try:
            for (scheme, kind), side in zip(cases, sides, strict=True):
                result = _measure_side(side, emulator, params, scheme)
                rows.append(_row(f"{SIDES[kind]}, {scheme}", params, result))
        finally:
            for side in sides:
                if side.poll() is None:
                    side.kill()
                    side.wait()
    return rows


def _row(label: str, params: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """Check one side's result (every event right, plausible counts) and make its table row."""
    if result["wrong"]:
        raise AssertionError(f"{label}: {len(result['wrong'])} wrong events, e.g. {result['wrong'][:3]}")
    if result["emulator_not_ok"]:
        raise AssertionError(f"{label}: {result['emulator_not_ok']} requests were not answered 200")
    gets, lists, connections = (
        result["emulator_gets"],
        result["emulator_lists"],
        result["emulator_connections"],
    )
    requests = gets + lists
    if gets < params["triggers"] or not 1 <= connections <= requests:
        raise AssertionError(f"{label}: implausible counts: {requests} requests, {connections} connections")
    return {
        "benchmark": "trigger fan-in",
        "case": label,
        "triggers": params["triggers"],
        "poll_interval_s": params["poll_interval"],
        "events_right": params["triggers"] - len(result["wrong"]),
        "wall_s": round(result["wall_s"], 2),
        "cpu_s": round(result["cpu_s"], 2),
        "cpu_ms_per_request": round(1000 * result["cpu_s"] / requests, 2),
        "rss_growth_mb": round(result["rss_growth_mb"], 1),
        "event_lag_p50_s": round(statistics.median(result["lags"]), 2),
        "event_lag_max_s": round(max(result["lags"]), 2),
        "requests": requests,
        "transcript_gets": gets,
        "list_pages": lists,
        "tcp_connections": connections,
        "emulator_cpu_s": round(result["emulator_cpu_s"], 2),
    }


def main(argv: list[str]) -> None:
    """Run the benchmark (``--smoke`` for the tiny one), or one side (``side provider|http``).

    :param argv: the command-line arguments.
    """
    if argv[:1] == ["side"] and len(argv) == 2:
        _run_side(argv[1])
    else:
        print(json.dumps(run(smoke="--smoke" in argv), indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
