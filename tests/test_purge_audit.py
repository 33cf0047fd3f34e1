"""
The purge's audit writer and its write-ahead: every DELETE is announced in a stored part before it is
sent, lines carry created/status/try_number, a re-run settles a killed attempt's intents with exact
counts, a store that fails stops the deletions, and the durability bound on a manual clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from airflow_provider_assemblyai import _audit_writer
from airflow_provider_assemblyai import purge as purge_module
from airflow_provider_assemblyai._audit_writer import AUDIT_BOUND_SECONDS, AUDIT_PART_SECONDS
from airflow_provider_assemblyai.audit import read_audit
from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook
from airflow_provider_assemblyai.models import Transcript
from airflow_provider_assemblyai.purge import (
    AuditError,
    AuditWriter,
    Outcome,
    PurgeSummary,
    run_purge,
)
from airflow_provider_assemblyai.testing import AssemblyAIEmulator
from tests.conftest import TEST_API_KEY
from tests.test_purge import OLD, deletes, old, plan

pytestmark = pytest.mark.assemblyai_emulator(api_keys=(TEST_API_KEY,))


def exact(summary: PurgeSummary) -> PurgeSummary:
    s = summary
    assert s.matched == s.deleted + s.would_delete + s.already_deleted + s.not_found + s.failed
    assert len(s.recovered_ids) == s.recovered
    json.dumps(s.to_dict())
    return s


# -- write-ahead -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["scan", "ids"])
def test_every_delete_is_announced_in_a_stored_part_before_it_is_sent(
    emu: AssemblyAIEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    ids = old(emu, 60)
    stored_intents: set[str] = set()
    sent_unannounced: list[str] = []
    real_upload, real_delete = AuditWriter._upload, AssemblyAIHook.adelete_transcript

    async def upload(self: AuditWriter, name: str, data: bytes) -> None:
        await real_upload(self, name, data)
        lines = [json.loads(line) for line in data.splitlines()]
        stored_intents.update(line["transcript_id"] for line in lines if line["type"] == "intent")

    async def delete(self: AssemblyAIHook, transcript_id: str) -> Transcript:
        if transcript_id not in stored_intents:
            sent_unannounced.append(transcript_id)
        return await real_delete(self, transcript_id)

    monkeypatch.setattr(AuditWriter, "_upload", upload)
    monkeypatch.setattr(AssemblyAIHook, "adelete_transcript", delete)
    selection = {"transcript_ids": tuple(ids), "created_before": None} if mode == "ids" else {}
    uri = f"{tmp_path.as_uri()}/audit/run.jsonl"

    summary = exact(run_purge(AssemblyAIHook(), plan(audit_path=uri, concurrency=8, **selection)))

    assert summary.deleted == 60
    assert sorted(deletes(emu)) == sorted(ids)
    assert sent_unannounced == []
    report = read_audit(uri)
    assert report.ok, report.problems
    assert report.open_intents == []
    assert sorted(r.transcript_id for r in report.records) == sorted(ids)


@pytest.mark.parametrize("mode", ["scan", "ids"])
def test_audit_lines_carry_created_status_and_an_integer_try_number(
    emu: AssemblyAIEmulator, tmp_path: Path, mode: str
) -> None:
    statuses = ["completed", "completed", "completed", "error"]
    created = [OLD - timedelta(hours=n, microseconds=n) for n in range(len(statuses))]
    ids = [
        emu.create_transcript("us", created=when, status=s) for when, s in zip(created, statuses, strict=True)
    ]
    gone, failed = ids[0], ids[3]
    _delete_in_emulator(emu, [gone])
    when_created = dict(zip(ids, created, strict=True))
    selection = {"transcript_ids": tuple(ids), "created_before": None} if mode == "ids" else {}
    fields = {"dag_id": "d", "task_id": "t", "run_id": "r", "try_number": 3}
    uri = f"{tmp_path.as_uri()}/audit/run.jsonl"

    exact(run_purge(AssemblyAIHook(), plan(audit_path=uri, audit_fields=fields, **selection)))

    report = read_audit(uri)
    lines = [
        json.loads(line)
        for part in sorted((tmp_path / "audit" / "run").rglob("part-*.jsonl"))
        for line in part.read_text().splitlines()
    ]
    outcomes = {line["transcript_id"]: line for line in lines if line["type"] == "outcome"}
    assert sorted(outcomes) == sorted(ids)
    assert all(line["try_number"] == 3 for line in lines if line["type"] in ("part", "outcome"))
    assert {r.try_number for r in report.records} == {3}
    for tid in ids:
        line = outcomes[tid]
        assert line["status"] == ("error" if tid == failed else "completed")
        if mode == "scan":  # the list gives the creation time; a GET does not
            assert datetime.fromisoformat(line["created"]) == when_created[tid]
        else:
            assert "created" not in line
    assert outcomes[gone]["outcome"] == "already_deleted"


# -- a re-run after a killed attempt ---------------------------------------------------------


async def _killed_attempt(uri: str, announced: list[str], recorded: list[str]) -> AuditWriter:
    """An attempt that announced ``announced``, recorded ``recorded`` of them, and was killed."""
    audit = AuditWriter(uri, {"try_number": 1}, region="us")
    await audit.open()
    seqs = [audit.intent(tid, created=OLD, status="completed") for tid in announced]
    await audit.wait_stored(seqs[-1])
    for tid in recorded:
        audit.outcome(tid, Outcome.DELETED, http_status=200)
    await audit.wait_stored(audit.intent("marker", created=None, status=None))
    assert audit._flusher is not None
    audit._flusher.cancel()  # killed: nothing more is stored
    with contextlib.suppress(asyncio.CancelledError):
        await audit._flusher
    return audit


def test_a_rerun_settles_a_killed_attempts_intents_with_exact_counts(
    emu: AssemblyAIEmulator, tmp_path: Path
) -> None:
    recorded = old(emu, 3)  # deleted, and the killed attempt recorded it
    unrecorded = old(emu, 4)  # deleted, but the kill came before the line was stored
    never_sent = old(emu, 2)  # announced, the kill came before the DELETE
    untouched = old(emu, 5)  # not announced yet
    uri = f"{tmp_path.as_uri()}/audit/run.jsonl"
    killed = asyncio.run(_killed_attempt(uri, [*recorded, *unrecorded, *never_sent], recorded))
    _delete_in_emulator(emu, recorded + unrecorded)

    rerun = exact(run_purge(AssemblyAIHook(), plan(audit_path=uri, audit_fields={"try_number": 2})))

    assert sorted(rerun.recovered_ids) == sorted(unrecorded)
    assert rerun.recovered == 4
    assert sorted(rerun.deleted_ids) == sorted(never_sent + untouched)
    assert rerun.already_deleted == len(recorded + unrecorded)  # the scan lists them, as before
    assert rerun.matched == 3 + 4 + 2 + 5
    report = read_audit(uri, anchors=[rerun.audit_anchor])
    assert report.ok, report.problems
    assert report.open_intents == []
    second = report.attempts[-1].name
    marker = [r for r in report.records if r.transcript_id == "marker"]  # an id that never existed
    assert [(r.outcome, r.attempt, r.recovered_by) for r in marker] == [("not_found", killed.attempt, second)]
    by_attempt = {(r.transcript_id, r.attempt, r.outcome, r.recovered_by is not None) for r in report.records}
    for tid in recorded:
        assert (tid, killed.attempt, "deleted", False) in by_attempt
    for tid in unrecorded:
        assert (tid, killed.attempt, "deleted", True) in by_attempt  # recorded for the killed attempt
        assert (tid, second, "deleted", False) not in by_attempt  # the re-run does not claim it
    for tid in never_sent:
        assert (tid, killed.attempt, "interrupted", True) in by_attempt  # never claimed deleted by it
        assert (tid, second, "deleted", False) in by_attempt
    assert report.ids("deleted") == set(recorded + unrecorded + never_sent + untouched)
    assert all(emu.is_deleted("us", tid) for tid in report.ids("deleted"))


def _delete_in_emulator(emu: AssemblyAIEmulator, ids: list[str]) -> None:
    """Delete as the killed attempt did: through the API, straight to the emulator."""
    import httpx

    with httpx.Client(base_url=emu.base_url("us"), headers={"Authorization": TEST_API_KEY}) as client:
        for tid in ids:
            client.delete(f"/v2/transcript/{tid}").raise_for_status()


# -- a failing store -------------------------------------------------------------------------


def test_a_store_that_cannot_be_written_deletes_nothing(emu: AssemblyAIEmulator, tmp_path: Path) -> None:
    old(emu, 5)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the audit folder should be")

    with pytest.raises(AuditError, match="could not store audit part"):
        run_purge(AssemblyAIHook(), plan(audit_path=f"{blocker.as_uri()}/run.jsonl"))

    assert deletes(emu) == []


def test_a_store_failing_midway_stops_the_deletions_and_reports_them_truthfully(
    emu: AssemblyAIEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = old(emu, 300)
    uploads = itertools.count(1)
    real_upload = AuditWriter._upload

    async def upload(self: AuditWriter, name: str, data: bytes) -> None:
        if next(uploads) > 3:
            raise OSError("the store is gone")
        await real_upload(self, name, data)

    monkeypatch.setattr(AuditWriter, "_upload", upload)
    monkeypatch.setattr(purge_module, "AUDIT_INTENT_LOOKAHEAD", 20)
    monkeypatch.setattr(_audit_writer, "wait_exponential", lambda *a, **k: lambda state: 0)
    uri = f"{tmp_path.as_uri()}/audit/run.jsonl"

    summary = exact(run_purge(AssemblyAIHook(), plan(audit_path=uri)))

    assert summary.error is not None
    assert "audit" in summary.error
    sent = deletes(emu)
    assert 0 < len(sent) < 300
    assert sorted(summary.deleted_ids) == sorted(tid for tid in ids if emu.is_deleted("us", tid))
    report = read_audit(uri)
    assert report.ok, report.problems
    assert report.ids("deleted") <= set(summary.deleted_ids)
    # Every DELETE sent was announced in a stored part: a re-run can settle what the audit lacks.
    announced = {i.transcript_id for i in report.open_intents} | {r.transcript_id for r in report.records}
    assert set(sent) <= announced


# -- the durability bound, on a manual clock -------------------------------------------------


class _SimClock:
    """Simulated seconds: sleepers wake when the driver moves time past their deadline."""

    def __init__(self) -> None:
        self.now = 0.0
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def sleep(self, seconds: float) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now + seconds, next(self._order), future))
        return future

    def next_deadline(self) -> float:
        while self._timers and self._timers[0][2].done():  # a sleeper woken early by an event
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else float("inf")

    def advance_to(self, when: float) -> None:
        self.now = max(self.now, when)
        while self._timers and self._timers[0][0] <= self.now:
            _, _, future = heapq.heappop(self._timers)
            if not future.done():
                future.set_result(None)


class _SimulatedWriter(AuditWriter):
    """The real writer on simulated time, with a store that takes ``upload_seconds`` per part."""

    def __init__(self, uri: str, clock: _SimClock) -> None:
        super().__init__(uri, region="us")
        self.clock = clock
        self.upload_seconds = 0.0
        self.stored: dict[str, bytes] = {}

    def _now(self) -> float:
        return self.clock.now

    async def _idle(self, timeout: float | None) -> None:
        self._wake.clear()
        waits = [asyncio.ensure_future(self._wake.wait())]
        if timeout is not None:
            waits.append(self.clock.sleep(timeout))
        _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for future in pending:
            future.cancel()

    async def _upload(self, name: str, data: bytes) -> None:
        if self.upload_seconds:
            await self.clock.sleep(self.upload_seconds)
        self.stored[name] = data


#: Lines arriving faster than this are added in batches every STEP seconds (their wait is then
#: measured up to STEP short: the bound is checked with STEP of slack).
STEP = 0.01


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def _simulate(uri: str, lines_per_second: float, upload_seconds: float, seconds: float) -> float:
    """Add lines at a steady rate for ``seconds``; return the longest any line waited to be stored."""
    clock = _SimClock()
    writer = _SimulatedWriter(uri, clock)
    await writer.open()
    writer.upload_seconds = upload_seconds
    added: list[float] = []
    next_line = 0.0
    while clock.now < seconds:
        clock.advance_to(min(clock.next_deadline(), max(next_line, clock.now + STEP)))
        await _settle()
        while next_line <= clock.now:
            writer.outcome(f"t{len(added)}", Outcome.DELETED, http_status=200)
            added.append(clock.now)
            next_line += 1 / lines_per_second
        await _settle()
    oldest_waiting = added[writer.lines] if writer.lines < len(added) else clock.now
    assert writer._flusher is not None
    writer._flusher.cancel()
    return max(writer.max_lag, clock.now - oldest_waiting)


#: (lines per second, seconds one part takes to store): from a trickle to 20,000 lines/s, from a
#: local disk to a store four times slower than the part interval.
SCENARIOS = [
    (1, 0.05),
    (66, 0.05),
    (1000, 0.05),
    (20_000, 0.05),
    (66, 0.5),
    (1000, 1.5),
    (1000, 2.0),
    (66, 4.0),
]


def test_the_durability_bound_on_a_manual_clock(memory_root: str, capsys: pytest.CaptureFixture[str]) -> None:
    """
    No line waits longer than the part interval plus one upload, or two uploads when one upload
    takes longer than the interval: a slow store never builds a backlog. Under 5 s while a part is
    stored within 2 s, at any rate.
    """
    rows = []
    for rate, upload in SCENARIOS:
        seconds = {1: 20, 66: 20, 1000: 8}.get(rate, 2)
        lag = asyncio.run(_simulate(f"{memory_root}/r{rate}-u{upload}.jsonl", rate, upload, seconds))
        bound = max(AUDIT_PART_SECONDS, upload) + upload
        rows.append(
            f"{rate:>6} lines/s for {seconds}s, {upload:>4}s per part: longest wait {lag:.2f}s "
            f"(bound {bound:.2f}s)"
        )
        assert lag <= bound + STEP, rows[-1]
        if upload <= (AUDIT_BOUND_SECONDS - AUDIT_PART_SECONDS) / 2:
            assert lag <= AUDIT_BOUND_SECONDS
    with capsys.disabled():
        print("\nDurability bound, simulated:\n" + "\n".join(rows))


def test_a_delete_waiting_for_its_intent_gets_a_part_at_once(memory_root: str) -> None:
    """Write-ahead never waits out the part interval: a waiting intent is stored right away."""

    async def scenario() -> float:
        clock = _SimClock()
        writer = _SimulatedWriter(f"{memory_root}/run.jsonl", clock)
        await writer.open()
        writer.upload_seconds = 0.05
        waiter = asyncio.ensure_future(writer.wait_stored(writer.intent("t", created=None, status=None)))
        await _settle()
        while not waiter.done():
            clock.advance_to(clock.next_deadline())
            await _settle()
        assert writer._flusher is not None
        writer._flusher.cancel()
        return clock.now

    assert asyncio.run(scenario()) == pytest.approx(0.05)
