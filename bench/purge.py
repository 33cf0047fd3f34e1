"""
Purge throughput against the emulator (real HTTP on 127.0.0.1, per-request latency), side by side:

* PurgeTranscriptsOperator's engine at concurrency 1, 4, 16, 32: efficiency = ideal / measured,
  ideal = N x latency / concurrency (target >= 0.85 at 16);
* the official ``assemblyai`` SDK deleting the same number one by one (``Transcript.delete_by_id``):
  speed-up of the purge at concurrency 16 (target >= 12x);
* the emulator enforcing a rate limit and the purge given the same limit: achieved rate / limit
  (target >= 0.95) and the number of 429s (target 0).

The emulator runs in this process (a uvicorn thread), so client and server share the GIL and the
machine's cores: figures are lower bounds of what the provider does against the real API.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook
from airflow_provider_assemblyai.models import TranscriptStatus
from airflow_provider_assemblyai.purge import PurgePlan, PurgeSummary, run_purge
from airflow_provider_assemblyai.testing import AssemblyAIEmulator

KEY = "bench-key-5c1e"
TERMINAL = frozenset({TranscriptStatus.COMPLETED, TranscriptStatus.ERROR})


def _purge(concurrency: int, rate: float | None = None) -> tuple[PurgeSummary, float]:
    plan = PurgePlan(
        transcript_ids=None,
        created_before=datetime.now(timezone.utc) + timedelta(seconds=1),
        statuses=TERMINAL,
        concurrency=concurrency,
        progress_interval=3600.0,
    )
    started = time.perf_counter()
    summary = run_purge(AssemblyAIHook(max_requests_per_second=rate), plan, logging.getLogger("bench"))
    return summary, time.perf_counter() - started


def _check(emu: AssemblyAIEmulator, summary: PurgeSummary, ids: list[str]) -> None:
    s = summary
    assert s.matched == s.deleted + s.already_deleted + s.not_found + s.failed, s.to_dict()
    assert (s.deleted, s.failed) == (len(ids), 0), s.to_dict()
    assert all(emu.is_deleted("us", tid) for tid in ids), "a reported deletion did not happen"


def _sdk_loop(emu: AssemblyAIEmulator, ids: list[str]) -> float:
    import assemblyai as aai

    aai.settings.api_key = KEY
    aai.settings.base_url = emu.base_url("us")
    started = time.perf_counter()
    for tid in ids:
        aai.Transcript.delete_by_id(tid)
    elapsed = time.perf_counter() - started
    assert all(emu.is_deleted("us", tid) for tid in ids), "the SDK loop did not delete everything"
    return elapsed


def run(smoke: bool) -> list[dict[str, Any]]:
    """Run the purge benchmark and return one row per measurement."""
    n, latency_ms, rate = (40, 1.0, 50) if smoke else (2000, 20.0, 100)
    levels = (1, 4) if smoke else (1, 4, 16, 32)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    rows: list[dict[str, Any]] = []
    with AssemblyAIEmulator(api_keys=(KEY,), latency_ms=latency_ms) as emu:
        os.environ["AIRFLOW_CONN_ASSEMBLYAI_DEFAULT"] = emu.connection_json("us")
        times: dict[int, float] = {}
        for concurrency in levels:
            emu.reset()
            emu.set_latency(latency_ms)
            ids = emu.seed(n)
            summary, elapsed = _purge(concurrency)
            _check(emu, summary, ids)
            times[concurrency] = elapsed
            ideal = n * latency_ms / 1000 / concurrency
            rows.append(
                {
                    "case": f"purge c={concurrency}",
                    "n": n,
                    "latency_ms": latency_ms,
                    "seconds": round(elapsed, 3),
                    "req_per_s": round(len(emu.requests) / elapsed, 1),
                    "metric": "efficiency",
                    "value": round(ideal / elapsed, 3),
                    "target": ">=0.85" if concurrency == 16 else None,
                }
            )
        emu.reset()
        emu.set_latency(latency_ms)
        ids = emu.seed(n)
        sdk = _sdk_loop(emu, ids)
        best = times.get(16, min(times.values()))
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
        emu.reset()
        emu.set_latency(latency_ms)
        ids = emu.seed(n // 2)
        emu.set_rate_limit(rate, 1.0)
        summary, elapsed = _purge(16, rate)
        _check(emu, summary, ids)
        achieved = len(emu.requests) / elapsed
        rows.append(
            {
                "case": f"purge c=16, limit {rate}/s",
                "n": n // 2,
                "latency_ms": latency_ms,
                "seconds": round(elapsed, 3),
                "req_per_s": round(achieved, 1),
                "metric": "rate/limit; 429s",
                "value": f"{achieved / rate:.3f}; {emu.rate_limited_count}",
                "target": ">=0.95; 0",
            }
        )
    return rows
