"""
The purge audit's durability and cost, against the emulator (20 ms per request) and a real S3 API on
loopback (moto's server, in its own process), through ObjectStoragePath and an ``aws`` connection:

* **max wait**: the longest any audit line waited between being written and its part being stored
  (measured by the writer for every part): the durability bound in practice (stated bound: 5 s);
* **cost**: purge throughput with the audit (write-ahead intents included) against no audit, for a
  scan and for explicit ids: medians of 3 rounds that alternate the stores;
* a store made slow on purpose (1.5 s per part, longer than the 1 s part interval): the wait stays
  near two uploads instead of growing;
* ``read_audit`` of the largest S3 audit (parts, records, seconds).

The S3 rows are left out when moto, s3fs or the amazon provider is not installed (``s3-tests`` extra).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from airflow_provider_assemblyai import purge as purge_module
from airflow_provider_assemblyai.audit import read_audit
from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook
from airflow_provider_assemblyai.purge import AuditWriter, PurgeEngine, PurgePlan, PurgeSummary
from airflow_provider_assemblyai.validation import TranscriptStatus
from bench._emulator import EmulatorProcess, child_env, project_root, stop_by_closing_stdin

TERMINAL = frozenset({TranscriptStatus.COMPLETED, TranscriptStatus.ERROR})
SLOW_PART_SECONDS = 1.5
ROUNDS = 3
_MOTO = """
import json, sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(json.dumps(server.get_host_and_port()), flush=True)
sys.stdin.read()
server.stop()
"""


class _MotoProcess:
    """moto's S3 server in a child process on a free 127.0.0.1 port; sets the ``aws_default`` connection."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _MOTO],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=project_root(),
            env=child_env({}),
        )
        assert self._proc.stdout is not None
        host, port = json.loads(self._proc.stdout.readline())
        self.endpoint = f"http://{host}:{port}"
        connection = {
            "conn_type": "aws",
            "login": "bench",
            "password": "bench",
            "extra": {"endpoint_url": self.endpoint, "region_name": "us-east-1"},
        }
        os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps(connection)
        os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
        import boto3

        self.bucket = f"bench-{uuid.uuid4().hex[:8]}"
        boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
            region_name="us-east-1",
        ).create_bucket(Bucket=self.bucket)

    def uri(self, key: str) -> str:
        return f"s3://aws_default@{self.bucket}/{key}"

    def close(self) -> None:
        stop_by_closing_stdin(self._proc)


def _moto_available() -> bool:
    try:
        import airflow.providers.amazon  # noqa: F401
        import moto.server  # noqa: F401
        import s3fs  # noqa: F401
    except ImportError:
        return False
    return True


def _purge(
    audit_path: str | None, concurrency: int, ids: list[str] | None = None, rate: float | None = None
) -> tuple[PurgeSummary, float, AuditWriter | None]:
    plan = PurgePlan(
        transcript_ids=tuple(ids) if ids is not None else None,
        created_before=None if ids is not None else datetime.now(timezone.utc) + timedelta(seconds=1),
        statuses=TERMINAL,
        concurrency=concurrency,
        audit_path=audit_path,
        audit_fields={"dag_id": "bench", "task_id": "purge", "run_id": "bench", "try_number": 1},
        progress_interval=3600.0,
    )
    hook = AssemblyAIHook(max_requests_per_second=rate, async_pool_size=max(20, concurrency))
    engine = PurgeEngine(hook, plan, logging.getLogger("bench"))

    async def main() -> PurgeSummary:
        try:
            return await engine.run()
        finally:
            await AssemblyAIHook.aclose_shared_clients()

    started = time.perf_counter()
    summary = asyncio.run(main())
    return summary, time.perf_counter() - started, engine._audit


def _row(
    case: str, n: int, latency: float, runs: list[tuple[PurgeSummary, float, AuditWriter | None]]
) -> dict[str, Any]:
    """One row from repeated runs of a case: the median time, the longest wait of any run."""
    for summary, _, _ in runs:
        assert summary.error is None, summary.error
        assert summary.deleted == n, summary.to_dict()
    seconds = statistics.median(elapsed for _, elapsed, _ in runs)
    lags = sorted(lag for _, _, audit in runs if audit for lag in audit.lags)
    audit = runs[-1][2]
    return {
        "case": case,
        "n": n,
        "latency_ms": latency,
        "runs": len(runs),
        "seconds": round(seconds, 2),
        "deleted_per_s": round(n / seconds, 1),
        "parts": audit.parts if audit else None,
        "lines": audit.lines if audit else None,
        "max_wait_s": round(lags[-1], 3) if lags else None,
        "p50_wait_s": round(lags[len(lags) // 2], 3) if lags else None,
    }


class _SlowStoreWriter(AuditWriter):
    """The real writer whose every part takes SLOW_PART_SECONDS longer to store."""

    async def _upload(self, name: str, data: bytes) -> None:
        await asyncio.sleep(SLOW_PART_SECONDS)
        await super()._upload(name, data)


def run(smoke: bool) -> list[dict[str, Any]]:
    """Run the audit benchmark and return one row per measurement."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    n, latency, concurrency = (60, 1.0, 4) if smoke else (2000, 20.0, 16)
    rows: list[dict[str, Any]] = []
    local = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    moto = _MotoProcess() if _moto_available() else None
    stores = {"local": lambda key: f"{local.as_uri()}/{key}"}
    if moto is not None:
        stores["s3"] = moto.uri
    try:
        with EmulatorProcess() as emulator:
            os.environ["AIRFLOW_CONN_ASSEMBLYAI_DEFAULT"] = emulator.connection_json(None)
            for store, uri in stores.items():  # warm up: imports, the filesystem, the first connections
                emulator.call("prepare", n=20, latency_ms=latency)
                _purge(uri(f"warm-up-{store}.jsonl"), concurrency)
            # Rounds alternate the stores, so a busy machine slows them alike; medians are reported.
            runs: dict[tuple[str, str], list[tuple[PurgeSummary, float, AuditWriter | None]]] = {}
            for round_ in range(1 if smoke else ROUNDS):
                for mode, size in (("scan", n), ("ids", n // 2)):
                    for store, uri in {"no audit": None, **stores}.items():
                        ids = emulator.call("prepare", n=size, latency_ms=latency)["ids"]
                        path = uri(f"{mode}-{round_}.jsonl") if uri else None
                        result = _purge(path, concurrency, ids=ids if mode == "ids" else None)
                        runs.setdefault((mode, store), []).append(result)
            for (mode, store), results in runs.items():
                size = n if mode == "scan" else n // 2
                label = store if store == "no audit" else f"audit {store}"
                rows.append(_row(f"{mode} c={concurrency}, {label}", size, latency, results))
                baseline = statistics.median(elapsed for _, elapsed, _ in runs[(mode, "no audit")])
                rows[-1]["vs_no_audit"] = round(statistics.median(r[1] for r in results) / baseline, 2)
            last = "s3" if moto is not None else "local"
            rate = 60.0
            limited = 60 if smoke else 900
            emulator.call("prepare", n=limited, latency_ms=latency)
            limited_run = _purge(stores[last](f"limited-{last}.jsonl"), concurrency, rate=rate)
            rows.append(
                _row(f"scan c={concurrency}, {rate:g}/s, audit {last}", limited, latency, [limited_run])
            )
            emulator.call("prepare", n=limited, latency_ms=latency)
            purge_module.AuditWriter = _SlowStoreWriter  # type: ignore[misc]
            try:
                slow_run = _purge(stores[last](f"slow-{last}.jsonl"), concurrency, rate=rate)
            finally:
                purge_module.AuditWriter = AuditWriter  # type: ignore[misc]
            rows.append(
                _row(f"{rate:g}/s, store +{SLOW_PART_SECONDS:g}s/part ({last})", limited, latency, [slow_run])
            )
            audit = slow_run[2]
            assert audit is not None
            assert audit.max_lag <= 2 * (SLOW_PART_SECONDS + 1.0), "a slow store built a backlog"
            started = time.perf_counter()
            report = read_audit(stores[last]("scan-0.jsonl"))
            assert report.ok, report.problems
            assert len(report.ids("deleted")) == n
            rows.append(
                {
                    "case": f"read_audit ({last})",
                    "n": len(report.records),
                    "seconds": round(time.perf_counter() - started, 2),
                    "parts": sum(attempt.parts for attempt in report.attempts),
                }
            )
    finally:
        if moto is not None:
            moto.close()
    return rows
