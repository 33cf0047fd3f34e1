"""
``dag.test()`` runs of example_assemblyai_wait_export_delete against the emulator (real HTTP, 127.0.0.1).

``dag.test()`` runs the deferred sensor's trigger inline on both Airflow majors. The emulator runs on
a manual clock: the transcript finishes only after it was polled twice (the sensor's first poke and
the trigger's first poll), so the sensor really defers and waits, however slowly the machine runs.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_assemblyai.testing import AssemblyAIEmulator, ManualClock
from tests.conftest import TEST_API_KEY, complete_after_polls
from tests.example_dags.dag_runner import EXAMPLE_DAGS, run_dag, task_states, xcom

DAG_ID = "example_assemblyai_wait_export_delete"
API_ERROR = "Download error, unable to download https://example.com/meeting.mp3"


def run_example(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *, final_status: str
) -> tuple[Any, AssemblyAIEmulator, str]:
    with AssemblyAIEmulator(api_keys=(TEST_API_KEY,), clock=ManualClock()) as emu:
        tid = emu.create_transcript(
            "us",
            status="queued",
            completes_in=300,
            audio_duration=95,
            final_status=final_status,
            error=API_ERROR if final_status == "error" else None,
        )
        monkeypatch.setenv("AIRFLOW_CONN_ASSEMBLYAI_DEFAULT", emu.connection_json("us", api_key=TEST_API_KEY))
        # Airflow 2.11 checks sensors against the default executor, which unit-test mode sets to
        # LocalExecutor, refused on SQLite; dag.test() runs every task in-process either way.
        monkeypatch.setenv("_AIRFLOW__SKIP_DATABASE_EXECUTOR_COMPATIBILITY_CHECK", "1")
        stop = threading.Event()
        watcher = threading.Thread(target=complete_after_polls, args=(emu, tid, 2, stop), daemon=True)
        watcher.start()
        try:
            run = run_dag(
                monkeypatch, EXAMPLE_DAGS, DAG_ID, {"transcript_id": tid, "export_dir": str(tmp_path)}
            )
        finally:
            stop.set()
            watcher.join()
        return run, emu, tid


def test_waits_in_the_triggerer_exports_then_deletes_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    run, emu, tid = run_example(monkeypatch, tmp_path, final_status="completed")

    assert task_states(run) == {
        ("wait_for_transcript", -1): "success",
        ("export_text", -1): "success",
        ("export_json", -1): "success",
        ("delete_transcript", -1): "success",
    }
    assert xcom(run, "wait_for_transcript") == {
        "transcript_id": tid,
        "status": "completed",
        "audio_duration": 95,
        "error": None,
    }
    # The exports hold the transcript as it was before the deletion.
    exported = json.loads((tmp_path / f"{tid}.json").read_text(encoding="utf-8"))
    text = (tmp_path / f"{tid}.txt").read_text(encoding="utf-8")
    assert exported["id"] == tid
    assert exported["status"] == "completed"
    assert text == exported["text"]
    assert text
    assert text != "Deleted by user."
    assert xcom(run, "export_text") == str(tmp_path / f"{tid}.txt")
    # The delete task's XCom is the deleted transcript exactly as the API answered it.
    deleted = xcom(run, "delete_transcript")
    assert deleted == emu.get("us", tid)
    assert (deleted["id"], deleted["text"], deleted["audio_url"]) == (
        tid,
        "Deleted by user.",
        "http://deleted_by_user",
    )
    assert emu.is_deleted("us", tid)
    assert [r.path for r in emu.requests if r.method == "DELETE"] == [f"/v2/transcript/{tid}"]
    # The DELETE came last, after the sensor (poke + trigger polls + resume) and both exports.
    methods = [r.method for r in emu.requests]
    assert methods[-1] == "DELETE"
    assert methods.count("GET") >= 6
    assert all(r.key_matched for r in emu.requests)
    assert TEST_API_KEY not in json.dumps(
        [xcom(run, t) for t in ("wait_for_transcript", "delete_transcript")]
    )


def test_a_failed_transcript_is_neither_exported_nor_deleted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    run, emu, tid = run_example(monkeypatch, tmp_path, final_status="error")

    assert task_states(run) == {
        ("wait_for_transcript", -1): "failed",
        ("export_text", -1): "upstream_failed",
        ("export_json", -1): "upstream_failed",
        ("delete_transcript", -1): "upstream_failed",
    }
    assert not emu.is_deleted("us", tid)
    assert [r.method for r in emu.requests if r.method != "GET"] == []
    assert list(tmp_path.iterdir()) == []
