"""
The purge engine against the emulator over real HTTP on 127.0.0.1: filters, explicit ids, paging,
exact counts, faults, audit trail, progress, crash and re-run, concurrency and rate limits.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_assemblyai.audit import read_audit
from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook
from airflow_provider_assemblyai.models import TranscriptStatus
from airflow_provider_assemblyai.purge import PurgePlan, PurgeSummary, apurge, run_purge
from airflow_provider_assemblyai.testing import AssemblyAIEmulator, Fault
from tests.conftest import TEST_API_KEY, Gateway

pytestmark = pytest.mark.assemblyai_emulator(api_keys=(TEST_API_KEY,))

NOW = datetime.now(timezone.utc)
OLD = NOW - timedelta(days=40)
RECENT = NOW - timedelta(days=5)
TERMINAL = frozenset({TranscriptStatus.COMPLETED, TranscriptStatus.ERROR})


def plan(**changes: Any) -> PurgePlan:
    base = PurgePlan(
        transcript_ids=None,
        created_before=datetime.now(timezone.utc) - timedelta(days=30),
        statuses=TERMINAL,
        concurrency=4,
        progress_interval=60.0,
    )
    return replace(base, **changes)


def purge(**changes: Any) -> PurgeSummary:
    summary = run_purge(AssemblyAIHook(), plan(**changes))
    assert_exact(summary)
    return summary


def assert_exact(summary: PurgeSummary) -> None:
    s = summary
    assert s.matched == s.deleted + s.would_delete + s.already_deleted + s.not_found + s.failed
    assert len(s.deleted_ids) == s.deleted
    assert len(s.failed_ids) == s.failed
    assert not set(s.deleted_ids) & set(s.failed_ids)
    json.dumps(s.to_dict())  # XCom-serialisable


def old(emu: AssemblyAIEmulator, n: int, **kwargs: Any) -> list[str]:
    return [emu.create_transcript("us", created=OLD - timedelta(minutes=i), **kwargs) for i in range(n)]


def deletes(emu: AssemblyAIEmulator) -> list[str]:
    return [r.path.rsplit("/", 1)[1] for r in emu.requests if r.method == "DELETE"]


def account(emu: AssemblyAIEmulator) -> dict[str, list[str]]:
    """A typical account: old completed/error/in-progress/deleted transcripts, and recent ones."""
    return {
        "completed": old(emu, 5),
        "error": old(emu, 3, status="error"),
        "queued": old(emu, 1, status="queued"),
        "processing": old(emu, 1, status="processing"),
        "deleted": old(emu, 2, deleted=True),
        "recent": [emu.create_transcript("us", created=RECENT) for _ in range(4)],
    }


def test_scan_deletes_only_old_terminal_transcripts(emu: AssemblyAIEmulator) -> None:
    ids = account(emu)

    summary = purge()

    candidates = ids["completed"] + ids["error"]
    assert (summary.scanned, summary.matched, summary.deleted) == (16, 10, 8)
    assert (summary.already_deleted, summary.not_found, summary.failed) == (2, 0, 0)
    assert summary.scan_complete
    assert not summary.limit_reached
    assert summary.error is None
    assert sorted(summary.deleted_ids) == sorted(candidates) == sorted(deletes(emu))
    assert all(emu.is_deleted("us", tid) for tid in candidates)
    for kept in ids["queued"] + ids["processing"] + ids["recent"]:
        assert not emu.is_deleted("us", kept)


def test_status_filter_keeps_other_statuses(emu: AssemblyAIEmulator) -> None:
    ids = account(emu)

    summary = purge(statuses=frozenset({TranscriptStatus.ERROR}))

    assert sorted(summary.deleted_ids) == sorted(ids["error"])
    assert summary.already_deleted == 2  # deleted ones read as completed, counted whatever the filter
    assert not any(emu.is_deleted("us", tid) for tid in ids["completed"])


def test_dry_run_matches_what_a_real_run_deletes(emu: AssemblyAIEmulator) -> None:
    account(emu)

    dry = purge(dry_run=True)

    assert (dry.deleted, dry.would_delete, dry.matched, dry.already_deleted) == (0, 8, 10, 2)
    assert deletes(emu) == []
    real = purge()
    assert real.matched == dry.matched
    assert sorted(real.deleted_ids) == sorted(dry.would_delete_ids)


def test_max_deletions_leaves_the_rest_for_the_next_run(emu: AssemblyAIEmulator) -> None:
    ids = old(emu, 10)

    first = purge(max_deletions=4)

    assert (first.deleted, first.limit_reached, first.scan_complete) == (4, True, False)
    assert len(deletes(emu)) == 4
    second = purge(max_deletions=100)
    assert (second.deleted, second.already_deleted, second.limit_reached) == (6, 4, False)
    assert all(emu.is_deleted("us", tid) for tid in ids)


def test_explicit_ids_get_first_then_delete(emu: AssemblyAIEmulator) -> None:
    completed = emu.create_transcript("us", created=RECENT)  # explicit ids ignore age
    errored = emu.create_transcript("us", status="error")
    gone = emu.create_transcript("us", deleted=True)
    queued = emu.create_transcript("us", status="queued")
    unknown = "0b2f7a4e-aaaa-4bbb-8ccc-123456789abc"
    ids = (completed, errored, gone, queued, unknown)

    summary = purge(transcript_ids=ids, created_before=None, statuses=frozenset({TranscriptStatus.COMPLETED}))

    assert (summary.scanned, summary.matched) == (5, 4)  # the error one is not selected by statuses
    assert summary.deleted_ids == [completed]
    assert (summary.already_deleted, summary.not_found, summary.failed) == (1, 1, 1)
    assert "queued" in summary.failed_ids[queued]
    assert "never deletes" in summary.failed_ids[queued]
    assert deletes(emu) == [completed]
    assert not emu.is_deleted("us", queued)
    assert not emu.is_deleted("us", errored)


def test_pagination_over_many_pages(emu: AssemblyAIEmulator) -> None:
    ids = emu.seed(650, span=timedelta(days=40), now=OLD)

    summary = purge(concurrency=8)

    assert (summary.scanned, summary.deleted) == (650, 650)
    lists = [r for r in emu.requests if r.method == "GET" and r.path == "/v2/transcript"]
    assert len(lists) == 4
    assert all("before_id=" in r.query for r in lists[1:])
    assert all(emu.is_deleted("us", tid) for tid in ids)


def test_failures_are_counted_and_never_reported_deleted(
    emu: AssemblyAIEmulator, set_connection: Callable[..., None]
) -> None:
    set_connection(region="us", base_url=emu.base_url("us"), max_retries=0)
    ids = old(emu, 20)
    emu.fail_next("error", times=3, method="DELETE")

    summary = purge()

    assert (summary.deleted, summary.failed) == (17, 3)
    for tid, reason in summary.failed_ids.items():
        assert not emu.is_deleted("us", tid)
        assert "HTTP 500" in reason
        assert TEST_API_KEY not in reason
    assert all(emu.is_deleted("us", tid) for tid in summary.deleted_ids)
    assert sorted([*summary.deleted_ids, *summary.failed_ids]) == sorted(ids)


def test_audit_has_one_truthful_record_per_transcript(emu: AssemblyAIEmulator, tmp_path: Path) -> None:
    ids = account(emu)
    uri = f"{tmp_path.as_uri()}/audit/run.jsonl"

    summary = purge(audit_path=uri, audit_fields={"run_id": "manual__1", "try_number": 1})

    folder = tmp_path / "audit" / "run"
    first_parts = {p: p.read_bytes() for p in folder.rglob("part-*.jsonl")}
    assert TEST_API_KEY not in b"".join(first_parts.values()).decode()
    assert summary.audit_path == (folder / Path(summary.audit_path).name).as_uri()
    report = read_audit(uri, anchors=[summary.audit_anchor])
    assert report.ok, report.problems
    by_id = {record.transcript_id: record for record in report.records}
    assert len(by_id) == len(report.records) == summary.matched == 10
    for tid in ids["completed"] + ids["error"]:
        assert by_id[tid].outcome == "deleted"
        assert by_id[tid].http_status == 200
    for tid in ids["deleted"]:
        assert by_id[tid].outcome == "already_deleted"
    assert {record.region for record in report.records} == {"us"}
    assert {(record.run_id, record.try_number) for record in report.records} == {("manual__1", 1)}
    assert all(datetime.fromisoformat(str(record.time)).tzinfo is not None for record in report.records)
    assert [attempt.finished for attempt in report.attempts] == [True]
    # A second run adds an attempt beside the first and never overwrites the first one's proof.
    again = purge(audit_path=uri, audit_fields={"run_id": "manual__1", "try_number": 2})
    assert again.audit_path is not None
    assert again.audit_path != summary.audit_path
    assert {p: p.read_bytes() for p in first_parts} == first_parts
    report = read_audit(uri, anchors=[summary.audit_anchor, again.audit_anchor])
    assert report.ok, report.problems
    assert [attempt.try_number for attempt in report.attempts] == [1, 2]
    assert {r.outcome for r in report.records if r.try_number == 2} == {"already_deleted"}


def test_progress_is_logged_with_rate_and_eta(
    emu: AssemblyAIEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    emu.set_latency(20)
    old(emu, 40)
    log = logging.getLogger("tests.purge.progress")

    with caplog.at_level(logging.INFO, logger=log.name):
        summary = run_purge(AssemblyAIHook(), plan(concurrency=2, progress_interval=0.1), log)

    assert summary.deleted == 40
    messages = [r.getMessage() for r in caplog.records if r.name == log.name]
    progress = [m for m in messages if m.startswith("Purge progress")]
    assert progress, messages
    assert all("/s, ETA" in m for m in progress)
    assert any("unknown yet (scan in progress" in m for m in progress)
    assert messages[-1].startswith("Purge finished: 40 of 40 done (40 deleted")
    assert all(TEST_API_KEY not in m for m in messages)


def test_500_transcripts_with_ten_percent_faults_all_deleted(emu: AssemblyAIEmulator) -> None:
    ids = emu.seed(500, span=timedelta(days=40), now=OLD)
    for kind in ("rate_limit", "error", "drop_after_effect"):
        emu.fail_randomly(kind, 0.035, method="DELETE")  # type: ignore[arg-type]

    summary = purge(concurrency=16)

    assert (summary.matched, summary.deleted, summary.failed, summary.not_found) == (500, 500, 0, 0)
    assert all(emu.is_deleted("us", tid) for tid in ids)
    faults = {r.fault for r in emu.requests if r.fault}
    assert faults == {"rate_limit", "error", "drop_after_effect"}
    assert emu.counters["faults"] >= 25


def test_a_429_holds_back_the_whole_pool(emu: AssemblyAIEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(AssemblyAIHook, "retry_after_cap", 1.0)
    emu.set_latency(5)
    old(emu, 60)
    emu.add_fault(Fault("rate_limit", method="DELETE", times=1, retry_after=1))

    summary = purge(concurrency=8)

    assert summary.deleted == 60
    log = emu.requests
    limited = next(r for r in log if r.fault == "rate_limit")
    starts = [r.time - timedelta(milliseconds=r.elapsed_ms) for r in log]
    # No request of any worker starts in the hold-back window (in-flight ones may land just after).
    window = (limited.time + timedelta(seconds=0.3), limited.time + timedelta(seconds=0.9))
    assert not [s for s in starts if window[0] < s < window[1]]
    assert any(s >= window[1] for s in starts)


def test_fatal_error_midway_then_rerun_finishes(emu: AssemblyAIEmulator) -> None:
    ids = emu.seed(300, span=timedelta(days=40), now=OLD)
    emu.add_fault(Fault("error", method="DELETE", status=401, times=1, probability=0.02))

    first = purge(concurrency=8)

    assert first.error is not None
    assert "401" in first.error
    assert TEST_API_KEY not in first.error
    assert first.failed == 1
    assert 0 < first.deleted < 300
    # Truthful: exactly the reported deletions happened, nothing more.
    assert sorted(tid for tid in ids if emu.is_deleted("us", tid)) == sorted(first.deleted_ids)
    emu.clear_faults()
    second = purge(concurrency=8)
    assert (second.already_deleted, second.deleted) == (first.deleted, 300 - first.deleted)
    assert all(emu.is_deleted("us", tid) for tid in ids)


async def test_cancelled_midway_leaves_a_truthful_audit_then_rerun_finishes(
    emu: AssemblyAIEmulator, tmp_path: Path
) -> None:
    emu.set_latency(15)
    ids = emu.seed(200, span=timedelta(days=40), now=OLD)
    audit = tmp_path / "audit.jsonl"
    task = asyncio.create_task(apurge(AssemblyAIHook(), plan(audit_path=audit.as_uri())))
    for _ in range(3000):
        if len(deletes(emu)) >= 40:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await AssemblyAIHook.aclose_shared_clients()

    report = read_audit(audit.as_uri())
    assert report.ok, report.problems
    assert report.records
    assert {r.outcome for r in report.records} == {"deleted"}
    assert all(emu.is_deleted("us", r.transcript_id) for r in report.records)
    done = [tid for tid in ids if emu.is_deleted("us", tid)]
    assert len(report.records) <= len(done) < 200
    # The queued ones were withdrawn; only the DELETEs in flight at the cancel stay open.
    assert len(report.open_intents) <= 4
    assert [a.finished for a in report.attempts] == [False]
    rerun = await apurge(AssemblyAIHook(), plan(audit_path=audit.as_uri()))
    await AssemblyAIHook.aclose_shared_clients()
    assert rerun.already_deleted + rerun.deleted == 200
    # DELETEs in flight at the cancel may still land on the server: at most `concurrency` of them.
    assert len(done) <= rerun.already_deleted <= len(done) + 4
    assert all(emu.is_deleted("us", tid) for tid in ids)
    after = read_audit(audit.as_uri())
    assert after.ok, after.problems
    assert after.open_intents == []
    assert rerun.recovered == len(after.ids()) - len(report.records) - rerun.deleted
    assert after.ids() == set(ids)  # every deletion, of either attempt, is in the audit


def _max_in_flight(emu: AssemblyAIEmulator, method: str | None = None) -> int:
    events: list[tuple[datetime, int]] = []
    for r in emu.requests:
        if method is None or r.method == method:
            events += [(r.time - timedelta(milliseconds=r.elapsed_ms), 1), (r.time, -1)]
    peak = current = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):
        current += step
        peak = max(peak, current)
    return peak


@pytest.mark.parametrize("concurrency", [1, 3])
def test_concurrency_bound_is_respected(emu: AssemblyAIEmulator, concurrency: int) -> None:
    emu.set_latency(25)
    ids = old(emu, 30)

    purge(concurrency=concurrency)
    assert _max_in_flight(emu, "DELETE") == concurrency

    emu.reset()
    emu.set_latency(25)
    ids = [emu.create_transcript("us") for _ in range(30)]
    purge(concurrency=concurrency, transcript_ids=tuple(ids), created_before=None)
    assert _max_in_flight(emu) == concurrency  # GET + DELETE of explicit ids share the bound


def test_rate_limiter_keeps_clear_of_the_api_limit(emu: AssemblyAIEmulator) -> None:
    # 20 requests/s with two seconds' worth of burst, like the real API's 5-minute window.
    emu.set_rate_limit(40, 2.0)
    old(emu, 60)

    summary = run_purge(AssemblyAIHook(max_requests_per_second=20), plan(concurrency=8))

    assert summary.deleted == 60
    assert emu.rate_limited_count == 0
    # Control: without the client-side limit a purge runs into the API's limit (a small burst here).
    emu.reset()
    emu.set_rate_limit(10, 0.5)
    old(emu, 60)
    unlimited = purge(concurrency=8)
    assert emu.rate_limited_count > 0
    assert unlimited.deleted + unlimited.failed == 60


def test_scan_behind_a_gateway_pages_with_before_id(behind_gateway: Gateway) -> None:
    """The API's prev_url names its own host behind a gateway: the scan reads every page from base_url."""
    emu = behind_gateway.emu
    ids = emu.seed(450, "us", span=timedelta(days=60))

    summary = purge(created_before=None, concurrency=8)

    assert summary.scan_complete
    assert (summary.scanned, summary.deleted) == (450, 450)
    assert all(emu.is_deleted("us", tid) for tid in ids)
    pages = [r for r in emu.requests_for(method="GET") if r.path == "/v2/transcript"]
    assert [r.query for r in pages] == [
        "limit=200",
        f"limit=200&before_id={ids[199]}",
        f"limit=200&before_id={ids[399]}",
    ]
    behind_gateway.assert_nothing_sent_upstream()
