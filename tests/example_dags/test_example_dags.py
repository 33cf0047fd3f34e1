"""
``dag.test()`` runs of the delete example DAGs against the emulator, over real HTTP on 127.0.0.1.

Each run checks the task states, the delete task's XCom (the deleted transcript as the emulator sent
it) and the emulator's request log (one DELETE per transcript, in the connection's region).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.example_dags.dag_runner import EXAMPLE_DAGS, run_dag, task_states, xcom

if TYPE_CHECKING:
    from airflow_provider_assemblyai.testing import AssemblyAIEmulator

POST_ETL = "example_assemblyai_post_etl_cleanup"
MAPPED = "example_assemblyai_mapped_delete"


def deletes(emu: AssemblyAIEmulator) -> list[tuple[str, str]]:
    """``(region, transcript id)`` of every DELETE the emulator served."""
    return [(r.region, r.path.rsplit("/", 1)[1]) for r in emu.requests if r.method == "DELETE"]


@pytest.mark.parametrize("region", ["us", "eu"])
def test_post_etl_cleanup_exports_then_deletes(
    region: str, assemblyai_emulator: AssemblyAIEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    emu = assemblyai_emulator
    tid = emu.create_transcript(region, status="completed", options={"speaker_labels": True})
    before = emu.get(region, tid)
    monkeypatch.setenv("AIRFLOW_CONN_ASSEMBLYAI_DEFAULT", emu.connection_json(region))

    run = run_dag(monkeypatch, EXAMPLE_DAGS, POST_ETL, {"transcript_id": tid, "export_dir": str(tmp_path)})

    assert task_states(run) == {
        ("export_text", -1): "success",
        ("export_utterances", -1): "success",
        ("delete_transcript", -1): "success",
    }
    # The exports hold what the transcript said before it was deleted.
    assert (tmp_path / f"{tid}.txt").read_text(encoding="utf-8") == before["text"]
    exported = json.loads((tmp_path / f"{tid}.json").read_text(encoding="utf-8"))
    assert exported["word_count"] == len(before["words"]) > 0
    assert [u["text"] for u in exported["utterances"]] == [before["text"]]
    assert xcom(run, "export_utterances")["word_count"] == exported["word_count"]
    # The delete task's XCom is the deleted transcript exactly as the API answered it.
    deleted = xcom(run, "delete_transcript")
    assert deleted == emu.get(region, tid)
    assert deleted["id"] == tid
    assert deleted["text"] == "Deleted by user."
    assert deleted["audio_url"] == "http://deleted_by_user"
    assert emu.is_deleted(region, tid)
    assert deletes(emu) == [(region, tid)]
    assert {r.region for r in emu.requests} == {region}


def test_post_etl_cleanup_keeps_a_transcript_it_could_not_export(
    assemblyai_emulator: AssemblyAIEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    emu = assemblyai_emulator
    tid = emu.create_transcript("us", status="error")
    monkeypatch.setenv("AIRFLOW_CONN_ASSEMBLYAI_DEFAULT", emu.connection_json("us"))

    run = run_dag(monkeypatch, EXAMPLE_DAGS, POST_ETL, {"transcript_id": tid, "export_dir": str(tmp_path)})

    states = task_states(run)
    assert states[("export_text", -1)] == "failed"
    assert states[("export_utterances", -1)] == "failed"
    assert states[("delete_transcript", -1)] == "upstream_failed"
    assert str(run.state) == "failed"
    assert deletes(emu) == []
    assert not emu.is_deleted("us", tid)


def test_mapped_delete_of_explicit_ids(
    assemblyai_emulator: AssemblyAIEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = assemblyai_emulator
    ids = [emu.create_transcript("eu", status=status) for status in ("completed", "error", "completed")]
    unknown = "0000000-unknown-transcript"
    monkeypatch.setenv("AIRFLOW_CONN_ASSEMBLYAI_DEFAULT", emu.connection_json("eu"))

    run = run_dag(monkeypatch, EXAMPLE_DAGS, MAPPED, {"transcript_ids": [*ids, unknown, ids[0]]})

    states = task_states(run)
    assert states == {
        ("choose_transcripts", -1): "success",
        **{("delete_transcript", index): "success" for index in range(4)},
        ("report", -1): "success",
    }
    assert xcom(run, "choose_transcripts") == [*ids, unknown]  # the duplicate is dropped
    for index, tid in enumerate(ids):
        assert xcom(run, "delete_transcript", index) == emu.get("eu", tid)
        assert emu.is_deleted("eu", tid)
    assert xcom(run, "delete_transcript", 3) is None  # missing_ok: the unknown id is not an error
    assert xcom(run, "report") == {"deleted": ids, "missing": [unknown]}
    # One DELETE per existing transcript; the unknown one was found missing by the GET before it.
    assert sorted(deletes(emu)) == sorted(("eu", tid) for tid in ids)
    assert {r.region for r in emu.requests} == {"eu"}


def test_mapped_delete_picks_old_completed_transcripts(
    assemblyai_emulator: AssemblyAIEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = assemblyai_emulator
    now = datetime.now(timezone.utc)

    def make(days: int, **kwargs: object) -> str:
        return emu.create_transcript("us", created=now - timedelta(days=days), **kwargs)  # type: ignore[arg-type]

    old = [make(40, status="completed"), make(50, status="completed"), make(60, status="completed")]
    keep = [
        make(2, status="completed"),  # too recent
        make(45, status="error"),  # not completed
        make(55, status="completed", deleted=True),  # already deleted
    ]
    monkeypatch.setenv("AIRFLOW_CONN_ASSEMBLYAI_DEFAULT", emu.connection_json("us"))

    run = run_dag(monkeypatch, EXAMPLE_DAGS, MAPPED, {"older_than_days": 30, "max_transcripts": 10})

    assert set(task_states(run).values()) == {"success"}
    assert xcom(run, "choose_transcripts") == old  # newest first, as the API lists them
    assert xcom(run, "report") == {"deleted": old, "missing": []}
    assert sorted(deletes(emu)) == sorted(("us", tid) for tid in old)
    assert all(emu.is_deleted("us", tid) for tid in old)
    assert not any(emu.is_deleted("us", tid) for tid in keep[:2])
