"""
A purge killed with SIGKILL, on local files and on S3 (moto's server), then re-run as Airflow would.

The purge runs in a child process (``PurgeTranscriptsOperator.execute``) against an emulator in this
process. The child kills itself at a chosen point, decided by a count, not by time:

- ``before_first_delete``: the first DELETE is about to be sent (its intent is stored);
- ``mid_batch``: the 60th DELETE is about to be sent, others in flight, outcome lines waiting;
- ``after_delete_answer``: the 40th DELETE was answered (the transcript is gone), its line not written;
- ``during_upload``: the 4th audit part is being stored (on disk: half a temporary file is written;
  on S3: the object landed but the writer never learnt it).

Right after the kill, the audit (read with ``read_audit``) is intact, claims no deletion that did
not happen, and names every deleted transcript, as a deletion or as an intent stored before its
DELETE; every deletion answered more than AUDIT_BOUND_SECONDS before the kill is recorded as done.
After a re-run (a new try, the same audit_path), every deleted transcript has exactly one
``deleted`` record across both attempts, the killed attempt's unrecorded deletions are recorded as
its own, and the re-run's summary counts are exact.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_assemblyai._audit_writer import AUDIT_BOUND_SECONDS
from airflow_provider_assemblyai.audit import AuditReport, read_audit
from airflow_provider_assemblyai.operators.assemblyai import PurgeTranscriptsOperator
from airflow_provider_assemblyai.testing import AssemblyAIEmulator
from tests.audit_stores import s3_uri
from tests.conftest import TEST_API_KEY

TRANSCRIPTS = 300
KILL_POINTS = {"before_first_delete": 1, "mid_batch": 60, "after_delete_answer": 40, "during_upload": 4}
PURGE_SCRIPT = """
    import json, os, signal, sys
    from datetime import datetime, timedelta, timezone

    from airflow_provider_assemblyai import _audit_writer
    from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook
    from airflow_provider_assemblyai.operators.assemblyai import PurgeTranscriptsOperator

    audit_path, facts_path = sys.argv[1], sys.argv[2]
    KILL_AT, KILL_N = os.environ["KILL_AT"], int(os.environ["KILL_N"])
    RATE = float(os.environ["RATE"]) or None
    _audit_writer.AUDIT_PART_LINES = 25  # many small parts: kills land between and inside them

    def die(**facts):
        with open(facts_path, "w") as file:
            json.dump({"time": datetime.now(timezone.utc).isoformat(), **facts}, file)
        os.kill(os.getpid(), signal.SIGKILL)

    deletes = 0
    real_delete = AssemblyAIHook.adelete_transcript

    async def delete(self, transcript_id):
        global deletes
        deletes += 1
        if KILL_AT in ("before_first_delete", "mid_batch") and deletes == KILL_N:
            die(transcript_id=transcript_id)
        answer = await real_delete(self, transcript_id)
        if KILL_AT == "after_delete_answer" and deletes == KILL_N:
            die(transcript_id=transcript_id)
        return answer

    parts = 0
    real_put = _audit_writer.AuditWriter._put

    def put(self, name, data):
        global parts
        parts += 1
        if KILL_AT == "during_upload" and parts == KILL_N:
            target = self._folder / name
            if str(target).startswith("file:"):  # a disk: the write is cut halfway
                folder = os.path.dirname(target.path)
                os.makedirs(folder, exist_ok=True)
                with open(os.path.join(folder, f".{target.name}.deadbeef.tmp"), "wb") as file:
                    file.write(data[: len(data) // 2])
            else:  # an object store: the object landed, its answer never reached the writer
                real_put(self, name, data)
            die(part=name)
        real_put(self, name, data)

    AssemblyAIHook.adelete_transcript = delete
    _audit_writer.AuditWriter._put = put

    class TaskInstance:
        dag_id, task_id, run_id, try_number = "retention", "purge", "manual__sigkill", 1

    PurgeTranscriptsOperator(
        task_id="purge",
        older_than=timedelta(0),
        concurrency=4,
        max_requests_per_second=RATE,
        audit_path=audit_path,
    ).execute({"ti": TaskInstance(), "run_id": "manual__sigkill"})
    print("the purge finished without being killed", flush=True)
"""


class _TaskInstance:
    dag_id, task_id, run_id, try_number = "retention", "purge", "manual__sigkill", 2

    def xcom_push(self, key: str, value: Any) -> None:
        raise AssertionError(f"the re-run failed: {value}")


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[AssemblyAIEmulator]:
    with AssemblyAIEmulator(api_keys=(TEST_API_KEY,), latency_ms=5) as emulator:
        for name, value in emulator.connection_env("us").items():
            monkeypatch.setenv(name, value)
        yield emulator


@pytest.fixture(params=["file", "s3"])
def audit_path(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "file":
        return f"{tmp_path.as_uri()}/audit/run.jsonl"
    return s3_uri(request.getfixturevalue("s3_bucket"), "purges/run.jsonl")


def wait_until(condition: Any, what: str, timeout: float = 180.0) -> None:
    """Poll ``condition`` until it is true (generous timeout: the machine is shared)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def settled(emu: AssemblyAIEmulator) -> set[str]:
    """Wait until DELETEs already sent by the killed child stop landing; return the deleted ids."""
    last: set[str] = set()
    stable_since = time.monotonic()
    while time.monotonic() - stable_since < 1.0:
        deleted = set(emu.ids("us", deleted=True))
        if deleted != last:
            last, stable_since = deleted, time.monotonic()
        time.sleep(0.05)
    return last


def kill_purge(
    emu: AssemblyAIEmulator, tmp_path: Path, audit_path: str, point: str, n: int, rate: float = 0
) -> dict[str, Any]:
    """Run the purge in a child that SIGKILLs itself at ``point``; return what it noted first."""
    script, facts = tmp_path / "purge.py", tmp_path / "killed.json"
    script.write_text(textwrap.dedent(PURGE_SCRIPT), encoding="utf-8")
    env = {**os.environ, "KILL_AT": point, "KILL_N": str(n), "RATE": str(rate)}
    child = subprocess.Popen(
        [sys.executable, str(script), audit_path, str(facts)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        output = child.communicate(timeout=300)[0].decode(errors="replace")
    finally:
        child.kill()
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL, output[-3000:]
    return dict(json.loads(facts.read_text(encoding="utf-8")))


def check_right_after_the_kill(
    emu: AssemblyAIEmulator, report: AuditReport, deleted: set[str], killed_at: datetime
) -> None:
    assert report.ok, report.problems
    claimed = report.ids("deleted")
    assert claimed <= deleted  # no claim of a deletion that did not happen
    assert {r.outcome for r in report.records} == {"deleted"} or not report.records
    # Write-ahead: every deleted transcript is named, as done or as announced before its DELETE.
    announced = {intent.transcript_id for intent in report.open_intents}
    assert deleted <= claimed | announced
    # The bound: a deletion answered long enough before the kill is recorded as done.
    horizon = killed_at - timedelta(seconds=AUDIT_BOUND_SECONDS)
    old = {
        r.path.rsplit("/", 1)[1]
        for r in emu.requests_for(method="DELETE")
        if r.status == 200 and r.time < horizon
    }
    assert old <= claimed


def rerun_and_check(emu: AssemblyAIEmulator, audit_path: str, before: AuditReport, deleted: set[str]) -> None:
    summary = PurgeTranscriptsOperator(
        task_id="purge", older_than=timedelta(0), concurrency=8, audit_path=audit_path
    ).execute({"ti": _TaskInstance(), "run_id": "manual__sigkill"})

    everything = set(emu.ids("us"))
    assert len(everything) == TRANSCRIPTS
    assert set(emu.ids("us", deleted=True)) == everything
    assert (summary["failed"], summary["not_found"], summary["error"]) == (0, 0, None)
    assert summary["matched"] == TRANSCRIPTS
    assert summary["deleted"] == TRANSCRIPTS - len(deleted)
    assert summary["already_deleted"] == len(deleted)
    unrecorded = deleted - before.ids("deleted")
    assert summary["recovered"] == len(unrecorded)
    assert set(summary["recovered_ids"]) == unrecorded
    after = read_audit(audit_path, anchors=[summary["audit_anchor"]])
    assert after.ok, after.problems
    assert after.open_intents == []
    killed, rerun = (attempt.name for attempt in after.attempts)
    assert [a.try_number for a in after.attempts] == [1, 2]
    done = [r for r in after.records if r.outcome == "deleted"]
    assert sorted(r.transcript_id for r in done) == sorted(everything)  # each exactly once
    by_killed = {r.transcript_id for r in done if r.attempt == killed}
    assert by_killed == deleted  # the killed attempt is credited with exactly what it deleted
    assert {r.transcript_id for r in done if r.recovered_by == rerun} == unrecorded
    assert {r.transcript_id for r in done if r.attempt == rerun} == set(summary["deleted_ids"])
    interrupted = {r.transcript_id for r in after.records if r.outcome == "interrupted"}
    assert not interrupted & deleted


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_a_killed_purge_loses_no_proof_and_a_rerun_completes_the_audit(
    emu: AssemblyAIEmulator, tmp_path: Path, audit_path: str, point: str
) -> None:
    emu.seed(TRANSCRIPTS, "us", statuses=["completed", "error"], span=timedelta(days=10))

    facts = kill_purge(emu, tmp_path, audit_path, point, KILL_POINTS[point])

    deleted = settled(emu)
    report = read_audit(audit_path)
    check_right_after_the_kill(emu, report, deleted, datetime.fromisoformat(facts["time"]))
    assert len(report.attempts) == 1
    assert not report.attempts[0].finished
    if point == "before_first_delete":
        assert deleted == set()
        assert emu.requests_for(method="DELETE") == []
        assert facts["transcript_id"] in {i.transcript_id for i in report.open_intents}
    elif point == "after_delete_answer":
        assert facts["transcript_id"] in deleted  # gone, and its line never written ...
        assert facts["transcript_id"] not in report.ids("deleted")
        assert facts["transcript_id"] in {i.transcript_id for i in report.open_intents}  # ... but announced
    elif point == "during_upload":
        stored = {a.last_part for a in report.attempts}
        if audit_path.startswith("s3://"):
            assert facts["part"] in stored  # the object landed; the writer never knew
        else:
            assert facts["part"] not in stored
            assert any("temporary file" in note for note in report.notes)
    else:
        assert 0 < len(deleted) < TRANSCRIPTS

    rerun_and_check(emu, audit_path, report, deleted)


def test_deletions_older_than_the_bound_are_recorded_when_the_purge_is_killed(
    emu: AssemblyAIEmulator, tmp_path: Path, audit_path: str
) -> None:
    """A purge held to 40 DELETEs a second runs for more than 6 s before the kill: the bound is tested."""
    emu.seed(TRANSCRIPTS, "us", statuses=["completed", "error"], span=timedelta(days=10))

    facts = kill_purge(emu, tmp_path, audit_path, "mid_batch", 260, rate=40)

    deleted = settled(emu)
    killed_at = datetime.fromisoformat(facts["time"])
    horizon = killed_at - timedelta(seconds=AUDIT_BOUND_SECONDS)
    older = [r for r in emu.requests_for(method="DELETE") if r.status == 200 and r.time < horizon]
    assert len(older) >= 40  # not vacuous: at 40/s, more than a second of deletions is that old
    report = read_audit(audit_path)
    check_right_after_the_kill(emu, report, deleted, killed_at)
    rerun_and_check(emu, audit_path, report, deleted)
