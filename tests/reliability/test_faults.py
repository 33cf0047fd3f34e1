"""
Faults survived, against the emulator: 429 storms with Retry-After, 5xx bursts, dropped connections
(before and after the delete took effect). Every transcript ends deleted, counts are exact, no
transcript is reported both deleted and failed, and retries are bounded: never more than
``max_retries + 1`` DELETEs per transcript per call, counted in the emulator's request log.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_assemblyai.audit import AuditRecord, read_audit
from airflow_provider_assemblyai.exceptions import AssemblyAIServerError, AssemblyAITransportError
from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook
from airflow_provider_assemblyai.operators.assemblyai import PurgeTranscriptsOperator
from airflow_provider_assemblyai.testing import AssemblyAIEmulator, Fault, FaultKind
from tests.example_dags.dag_runner import run_dag, task_states, xcom
from tests.reliability.helpers import dag_folder

MAX_RETRIES = 3  # the ``emu`` fixture's connection

#: Fault patterns for one transcript's DELETEs, and whether a delete can still succeed.
PATTERNS: dict[str, tuple[list[tuple[FaultKind, int]], bool]] = {
    "clean": ([], True),
    "rate_limited": ([("rate_limit", 3)], True),
    "server_errors": ([("error", 1), ("empty", 1), ("html", 1)], True),
    "dropped_before_effect": ([("drop", 2)], True),
    "dropped_after_effect": ([("drop_after_effect", 1)], True),
    "always_dropped_after_effect": ([("drop_after_effect", MAX_RETRIES + 1)], True),
    "always_failing": ([("error", MAX_RETRIES + 1)], False),
}


def arm(emu: AssemblyAIEmulator, tid: str, pattern: str) -> None:
    """Queue the pattern's faults on this transcript's DELETEs, in order."""
    for kind, times in PATTERNS[pattern][0]:
        emu.add_fault(Fault(kind, method="DELETE", path=f"/v2/transcript/{tid}", times=times))


def deletes_per_transcript(emu: AssemblyAIEmulator) -> Counter[str]:
    return Counter(r.path.rsplit("/", 1)[1] for r in emu.requests_for("DELETE"))


# -- the hook ------------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", [p for p, (_, ok) in PATTERNS.items() if ok and "after" not in p])
def test_hook_delete_survives(emu: AssemblyAIEmulator, pattern: str) -> None:
    tid = emu.create_transcript("us", status="completed")
    arm(emu, tid, pattern)

    assert AssemblyAIHook().delete_transcript(tid).is_deleted

    assert emu.is_deleted("us", tid)
    assert deletes_per_transcript(emu)[tid] == 1 + sum(times for _, times in PATTERNS[pattern][0])
    assert deletes_per_transcript(emu)[tid] <= MAX_RETRIES + 1


@pytest.mark.parametrize("pattern", [p for p, (_, ok) in PATTERNS.items() if ok and "after" not in p])
async def test_async_hook_delete_survives(
    emu: AssemblyAIEmulator, pattern: str, shared_clients: None
) -> None:
    tid = emu.create_transcript("us", status="completed")
    arm(emu, tid, pattern)

    assert (await AssemblyAIHook().adelete_transcript(tid)).is_deleted

    assert emu.is_deleted("us", tid)
    assert deletes_per_transcript(emu)[tid] <= MAX_RETRIES + 1


def test_hook_gives_up_after_max_retries(emu: AssemblyAIEmulator) -> None:
    tid = emu.create_transcript("us", status="completed")
    arm(emu, tid, "always_failing")

    with pytest.raises(AssemblyAIServerError):
        AssemblyAIHook().delete_transcript(tid)

    assert deletes_per_transcript(emu)[tid] == MAX_RETRIES + 1
    assert not emu.is_deleted("us", tid)


def test_hook_retries_a_delete_dropped_after_its_effect(emu: AssemblyAIEmulator) -> None:
    tid = emu.create_transcript("us", status="completed")
    arm(emu, tid, "dropped_after_effect")

    assert AssemblyAIHook().delete_transcript(tid).is_deleted  # the retry sees the deleted shape
    assert deletes_per_transcript(emu)[tid] == 2

    other = emu.create_transcript("us", status="completed")
    arm(emu, other, "always_dropped_after_effect")
    with pytest.raises(AssemblyAITransportError) as info:
        AssemblyAIHook().delete_transcript(other)
    assert info.value.request_sent  # so callers know to check, and the operators do (below)
    assert emu.is_deleted("us", other)
    assert deletes_per_transcript(emu)[other] == MAX_RETRIES + 1


# -- DeleteTranscriptOperator in a real DAG run ------------------------------------------------------

FAULTY_DAG = """
    from __future__ import annotations

    from datetime import datetime

    from airflow.providers.common.compat.sdk import DAG

    from airflow_provider_assemblyai.operators.assemblyai import DeleteTranscriptOperator

    with DAG(
        dag_id="reliability_faulty_deletes",
        schedule=None,
        start_date=datetime(2025, 1, 1),
        catchup=False,
        params={"ids": {}},
    ):
        for name in %s:
            DeleteTranscriptOperator(task_id=name, transcript_id="{{ params.ids['%%s'] }}" %% name)
"""


def test_delete_operator_dag_run_survives_faults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, emu: AssemblyAIEmulator
) -> None:
    ids = {pattern: emu.create_transcript("us", status="completed") for pattern in PATTERNS}
    for pattern, tid in ids.items():
        arm(emu, tid, pattern)
    folder = dag_folder(tmp_path, {"faulty": FAULTY_DAG % sorted(PATTERNS)})

    run = run_dag(monkeypatch, folder, "reliability_faulty_deletes", {"ids": ids})

    states = {task_id: state for (task_id, _), state in task_states(run).items()}
    for pattern, tid in ids.items():
        survives = PATTERNS[pattern][1]
        assert states[pattern] == ("success" if survives else "failed"), pattern
        assert emu.is_deleted("us", tid) is survives, pattern  # reported deleted <=> really deleted
        if survives:
            assert xcom(run, pattern) == emu.get("us", tid)  # the deleted shape, as the API has it
        assert deletes_per_transcript(emu)[tid] <= MAX_RETRIES + 1, pattern


# -- purges ------------------------------------------------------------------------------------------


class _XComSink:
    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def _purge(mode: str, ids: list[str], audit: Path) -> PurgeTranscriptsOperator:
    selection: dict[str, Any] = {"transcript_ids": ids} if mode == "ids" else {"older_than": timedelta(0)}
    return PurgeTranscriptsOperator(
        task_id="purge", concurrency=8, fail_on_error=False, audit_path=audit.as_uri(), **selection
    )


def _audit_records(path: Path) -> list[AuditRecord]:
    report = read_audit(path.as_uri())
    assert report.ok, report.problems
    return report.records


@pytest.mark.parametrize("mode", ["ids", "scan"])
def test_purge_survives_a_fault_storm_and_a_rerun_finishes(
    emu: AssemblyAIEmulator, tmp_path: Path, mode: str
) -> None:
    patterns = list(PATTERNS) * 6  # 42 transcripts, every pattern six times
    ids = [emu.create_transcript("us", status="completed") for _ in patterns]
    for tid, pattern in zip(ids, patterns, strict=True):
        arm(emu, tid, pattern)
    doomed = {tid for tid, pattern in zip(ids, patterns, strict=True) if not PATTERNS[pattern][1]}

    summary = _purge(mode, ids, tmp_path / "audit.jsonl").execute({"ti": _XComSink()})

    deleted, failed = set(summary["deleted_ids"]), set(summary["failed_ids"])
    assert deleted == set(ids) - doomed
    assert failed == doomed
    assert summary["deleted"] == len(deleted) == len(ids) - len(doomed)
    assert summary["failed"] == len(doomed)
    assert summary["matched"] == len(ids)
    assert summary["already_deleted"] == summary["not_found"] == 0
    assert all(emu.is_deleted("us", tid) for tid in deleted)
    assert not any(emu.is_deleted("us", tid) for tid in failed)
    assert max(deletes_per_transcript(emu).values()) <= MAX_RETRIES + 1
    records = _audit_records(tmp_path / "audit.jsonl")
    assert sorted(record.transcript_id for record in records) == sorted(ids)  # one record each
    assert {record.transcript_id for record in records if record.outcome == "deleted"} == deleted
    assert {record.transcript_id for record in records if record.outcome == "failed"} == failed

    emu.clear_faults()
    again = _purge(mode, ids, tmp_path / "audit.jsonl").execute({"ti": _XComSink()})

    assert set(again["deleted_ids"]) == doomed
    assert (again["deleted"], again["already_deleted"], again["failed"]) == (
        len(doomed),
        len(ids) - len(doomed),
        0,
    )
    assert all(emu.is_deleted("us", tid) for tid in ids)
    assert again["audit_path"] != summary["audit_path"]  # a new attempt beside the first one's
    records = _audit_records(tmp_path / "audit.jsonl")  # the first run's records are kept
    assert len(records) == 2 * len(ids)
    assert {r.transcript_id for r in records if r.outcome == "deleted"} == set(ids)


def test_purge_honours_an_account_wide_rate_limit(
    emu: AssemblyAIEmulator, monkeypatch: pytest.MonkeyPatch, set_connection: Callable[..., None]
) -> None:
    monkeypatch.setattr(AssemblyAIHook, "retry_after_cap", 5.0)  # honour the real Retry-After
    set_connection(base_url=emu.base_url("us"), max_retries=MAX_RETRIES)
    ids = [emu.create_transcript("us", status="completed") for _ in range(8)]
    emu.set_rate_limit(8, per_seconds=1.0)  # 8 requests/s across the account: 16 requests to make

    summary = PurgeTranscriptsOperator(task_id="purge", transcript_ids=ids, concurrency=8).execute({})

    assert summary["deleted"] == len(ids)
    assert summary["failed"] == 0
    assert all(emu.is_deleted("us", tid) for tid in ids)
    assert emu.rate_limited_count > 0  # the storm happened
    assert max(deletes_per_transcript(emu).values()) <= MAX_RETRIES + 1
