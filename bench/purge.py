"""
Purge throughput against the emulator (real HTTP on 127.0.0.1, per-request latency), side by side:

* PurgeTranscriptsOperator's engine at concurrency 1, 4, 16, 32: efficiency = ideal / measured,
  ideal = N x latency / concurrency (target >= 0.85 at 16);
* the official ``assemblyai`` SDK deleting the same number one by one (``Transcript.delete_by_id``):
  speed-up of the purge at concurrency 16 (target >= 12x);
* the emulator enforcing a rate limit and the purge given the same limit: achieved rate / limit
  (target >= 0.95) and the number of 429s (target 0).

The emulator runs in its own process (``bench._emulator``), so its CPU is not charged to the client.
Both latencies are measured: 20 ms (a nearby region; the client's CPU becomes the limit: httpx costs
about 3.5 ms of CPU per request on these machines, so one core tops out near 250-300 requests/s,
still four times the account's whole rate limit of about 66 requests/s) and 100 ms (a typical
round trip to the API from another continent).
"""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook
from airflow_provider_assemblyai.purge import PurgePlan, PurgeSummary, run_purge
from airflow_provider_assemblyai.validation import TranscriptStatus
from bench._emulator import API_KEY, EmulatorProcess

TERMINAL = frozenset({TranscriptStatus.COMPLETED, TranscriptStatus.ERROR})


def _purge(concurrency: int, rate: float | None = None) -> tuple[PurgeSummary, float]:
    plan = PurgePlan(
        transcript_ids=None,
        created_before=datetime.now(timezone.utc) + timedelta(seconds=1),
        statuses=TERMINAL,
        concurrency=concurrency,
        progress_interval=3600.0,
    )
    hook = AssemblyAIHook(max_requests_per_second=rate, async_pool_size=max(20, concurrency))
    started = time.perf_counter()
    summary = run_purge(hook, plan, logging.getLogger("bench"))
    return summary, time.perf_counter() - started


def _check(emulator: EmulatorProcess, summary: PurgeSummary, ids: list[str]) -> dict[str, Any]:
    s = summary
    assert s.matched == s.deleted + s.already_deleted + s.not_found + s.failed, s.to_dict()
    assert (s.deleted, s.failed) == (len(ids), 0), s.to_dict()
    stats = emulator.call("stats", ids=ids)
    assert stats["deleted"] == len(ids), "a reported deletion did not happen"
    return stats


def _sdk_loop(emulator: EmulatorProcess, ids: list[str]) -> float:
    import assemblyai as aai

    aai.settings.api_key = API_KEY
    aai.settings.base_url = emulator.url(None)
    started = time.perf_counter()
    for tid in ids:
        aai.Transcript.delete_by_id(tid)
    elapsed = time.perf_counter() - started
    assert emulator.call("stats", ids=ids)["deleted"] == len(ids), "the SDK loop did not delete everything"
    return elapsed


def _levels(
    emulator: EmulatorProcess, n: int, latency_ms: float, levels: tuple[int, ...]
) -> list[dict[str, Any]]:
    rows = []
    times: dict[int, float] = {}
    for concurrency in levels:
        ids = emulator.call("prepare", n=n, latency_ms=latency_ms)["ids"]
        summary, elapsed = _purge(concurrency)
        stats = _check(emulator, summary, ids)
        times[concurrency] = elapsed
        ideal = n * latency_ms / 1000 / concurrency
        rows.append(
            {
                "case": f"purge c={concurrency}",
                "n": n,
                "latency_ms": latency_ms,
                "seconds": round(elapsed, 3),
                "req_per_s": round(stats["requests"] / elapsed, 1),
                "metric": "efficiency",
                "value": round(ideal / elapsed, 3),
                "target": ">=0.85" if concurrency == 16 else None,
            }
        )
    ids = emulator.call("prepare", n=n, latency_ms=latency_ms)["ids"]
    sdk = _sdk_loop(emulator, ids)
    best = times.get(16, times[max(times)])
    rows.append(
        {
            "case": "assemblyai SDK loop",
            "n": n,
            "latency_ms": latency_ms,
            "seconds": round(sdk, 3),
            "req_per_s": round(n / sdk, 1),
            "metric": f"purge c={16 if 16 in times else max(times)} speed-up",
            "value": round(sdk / best, 2),
            "target": ">=12x",
        }
    )
    return rows


def run(smoke: bool) -> list[dict[str, Any]]:
    """Run the purge benchmark and return one row per measurement."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    rows: list[dict[str, Any]] = []
    with EmulatorProcess() as emulator:
        os.environ["AIRFLOW_CONN_ASSEMBLYAI_DEFAULT"] = emulator.connection_json(None)
        if smoke:
            rows += _levels(emulator, 40, 1.0, (1, 4))
            rate, n_limited, latency = 50.0, 40, 1.0
        else:
            rows += _levels(emulator, 2000, 20.0, (1, 4, 16, 32))
            rows += _levels(emulator, 800, 100.0, (16, 32))
            rate, n_limited, latency = 60.0, 1200, 20.0
        prepared = emulator.call(
            "prepare", n=n_limited, latency_ms=latency, rate_limit=int(rate), per_seconds=1
        )
        ids = prepared["ids"]
        summary, elapsed = _purge(16, rate)
        stats = _check(emulator, summary, ids)
        achieved = stats["requests"] / elapsed
        rows.append(
            {
                "case": f"purge c=16, limit {rate:g}/s",
                "n": n_limited,
                "latency_ms": latency,
                "seconds": round(elapsed, 3),
                "req_per_s": round(achieved, 1),
                "metric": "rate/limit; 429s",
                "value": f"{achieved / rate:.3f}; {stats['rate_limited']}",
                "target": ">=0.95; 0",
            }
        )
    return rows
