"""``dag.test()`` of the daily retention purge example against the emulator (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from airflow_provider_assemblyai.testing import AssemblyAIEmulator
from tests.conftest import TEST_API_KEY
from tests.example_dags.dag_runner import EXAMPLE_DAGS, dag_bag, run_dag, task_states, xcom

DAG_ID = "example_assemblyai_retention_purge"


def test_example_is_a_daily_schedule_without_catchup() -> None:
    dag = dag_bag(EXAMPLE_DAGS).get_dag(DAG_ID)
    assert dag is not None
    assert dag.catchup is False
    task = dag.get_task("purge_old_transcripts")
    assert task.max_requests_per_second is not None
    assert "{{ ds }}" in task.audit_path


OLD = datetime.now(timezone.utc) - timedelta(days=31)


@pytest.mark.assemblyai_emulator(api_keys=(TEST_API_KEY,))
def test_retention_purge_deletes_old_terminal_transcripts_with_an_audit(
    emu: AssemblyAIEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    old = OLD
    expired = [emu.create_transcript("us", status=s, created=old) for s in ("completed", "error") * 3]
    in_progress = emu.create_transcript("us", status="processing", created=old)
    fresh = [emu.create_transcript("us", created=old + timedelta(days=3)) for _ in range(3)]

    run = run_dag(monkeypatch, EXAMPLE_DAGS, DAG_ID, {"audit_dir": tmp_path.as_uri()})

    assert task_states(run) == {("purge_old_transcripts", -1): "success", ("verify_audit", -1): "success"}
    summary = xcom(run, "purge_old_transcripts")
    assert (summary["scanned"], summary["matched"], summary["deleted"], summary["failed"]) == (10, 6, 6, 0)
    assert sorted(summary["deleted_ids"]) == sorted(expired)
    assert all(emu.is_deleted("us", tid) for tid in expired)
    assert not any(emu.is_deleted("us", tid) for tid in [in_progress, *fresh])
    assert xcom(run, "verify_audit") == {"attempts": 1, "records": 6, "deleted": 6, "open_intents": 0}
    (day,) = tmp_path.iterdir()  # <audit_dir>/<ds>/<attempt>/part-*.jsonl
    (attempt,) = day.iterdir()
    assert summary["audit_path"] == attempt.as_uri()
    lines = [json.loads(line) for part in sorted(attempt.iterdir()) for line in part.read_text().splitlines()]
    outcomes = [line for line in lines if line["type"] == "outcome"]
    assert sorted(line["transcript_id"] for line in outcomes) == sorted(expired)
    assert {(line["outcome"], line["dag_id"], line["try_number"]) for line in outcomes} == {
        ("deleted", DAG_ID, 1)
    }
    assert all(line["created"] and line["status"] in ("completed", "error") for line in outcomes)
    assert TEST_API_KEY not in json.dumps(lines)


@pytest.mark.assemblyai_emulator(api_keys=(TEST_API_KEY,))
def test_verify_audit_fails_when_the_days_audit_was_edited(
    emu: AssemblyAIEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    emu.create_transcript("us", status="completed", created=OLD)
    first = run_dag(monkeypatch, EXAMPLE_DAGS, DAG_ID, {"audit_dir": tmp_path.as_uri()})
    assert task_states(first)[("verify_audit", -1)] == "success"
    part = sorted(tmp_path.rglob("part-*.jsonl"))[1]  # the first attempt's intents
    part.write_text(part.read_text().replace('"status":"completed"', '"status":"error"'))
    emu.create_transcript("us", status="completed", created=OLD)

    second = run_dag(monkeypatch, EXAMPLE_DAGS, DAG_ID, {"audit_dir": tmp_path.as_uri()})

    assert task_states(second) == {("purge_old_transcripts", -1): "success", ("verify_audit", -1): "failed"}
    assert xcom(second, "purge_old_transcripts")["deleted"] == 1


@pytest.mark.assemblyai_emulator(api_keys=(TEST_API_KEY,))
def test_retention_purge_triggered_as_a_dry_run_deletes_nothing(
    assemblyai_emulator: AssemblyAIEmulator,
    set_connection: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    emu = assemblyai_emulator
    set_connection(region="us", base_url=emu.base_url("us"))
    old = datetime.now(timezone.utc) - timedelta(days=31)
    expired = [emu.create_transcript("us", status=s, created=old) for s in ("completed", "error")]

    run = run_dag(monkeypatch, EXAMPLE_DAGS, DAG_ID, {"audit_dir": tmp_path.as_uri(), "dry_run": True})

    summary = xcom(run, "purge_old_transcripts")
    assert (summary["dry_run"], summary["would_delete"], summary["deleted"]) == (True, 2, 0)
    assert sorted(summary["would_delete_ids"]) == sorted(expired)
    assert emu.requests_for(method="DELETE") == []
