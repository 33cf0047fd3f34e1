"""
PurgeTranscriptsOperator: constructor validation, and real ``dag.test()`` runs against the emulator
(XComArg ids, templated fields checked before any request, fail_on_error both ways).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_assemblyai.operators.assemblyai import PurgeTranscriptsOperator
from airflow_provider_assemblyai.testing import AssemblyAIEmulator
from tests.conftest import TEST_API_KEY
from tests.example_dags.dag_runner import run_dag, task_states, xcom

pytestmark = pytest.mark.assemblyai_emulator(api_keys=(TEST_API_KEY,))

OK = {"task_id": "purge", "older_than": timedelta(days=30)}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"concurrency": 0}, "concurrency must be an integer from 1 to 100, got 0"),
        ({"concurrency": 500}, "got 500"),
        ({"older_than": timedelta(days=-1)}, "older_than must be a timedelta >= 0"),
        ({"older_than": 30}, "older_than must be a timedelta"),
        ({"created_before": "2024-01-01"}, "cannot be combined"),
        ({"statuses": ("completed", "archived")}, "unknown status 'archived'"),
        ({"statuses": ("completed", "processing")}, "never deletes processing"),
        ({"statuses": "queued"}, "never deletes queued"),
        ({"max_deletions": 0}, "max_deletions must be an integer >= 1"),
        ({"max_requests_per_second": 0}, "max_requests_per_second must be a number > 0"),
        ({"max_requests_per_second": -5.0}, "got -5.0"),
        ({"older_than": None}, "needs transcript_ids, older_than or created_before"),
        ({"transcript_ids": ["abc"]}, "cannot be combined"),
        ({"older_than": None, "created_before": "last tuesday"}, "created_before must be a datetime"),
        ({"older_than": None, "transcript_ids": "abc"}, "transcript_ids must be a list"),
        ({"older_than": None, "transcript_ids": ["ok-id", "../v2"]}, "transcript_ids[1]"),
    ],
)
def test_bad_arguments_are_refused_naming_the_value(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        PurgeTranscriptsOperator(**(OK | changes))


def test_valid_arguments() -> None:
    op = PurgeTranscriptsOperator(
        task_id="purge",
        created_before="{{ data_interval_start }}",
        statuses="error",
        concurrency=16,
        max_requests_per_second=50,
        max_deletions=1000,
        audit_path="s3://bucket/{{ ds }}.jsonl",
        dry_run=True,
    )
    assert isinstance(PurgeTranscriptsOperator.template_fields, tuple)
    assert {"transcript_ids", "created_before", "audit_path"} <= set(op.template_fields)
    assert op.statuses == ("error",)
    assert op.is_dry_run is True
    # BaseOperator's own dry_run(), where Airflow has one (3.0's BaseOperator has none), is not shadowed
    assert not hasattr(op, "dry_run") or callable(op.dry_run)
    assert op.hook.max_requests_per_second == 50.0
    PurgeTranscriptsOperator(task_id="all", older_than=timedelta(0))
    PurgeTranscriptsOperator(task_id="ids", transcript_ids="{{ ti.xcom_pull('ids') }}")
    PurgeTranscriptsOperator(task_id="dt", created_before=datetime(2024, 1, 1, tzinfo=timezone.utc))


def test_dag_files_do_not_load_the_purge_machinery() -> None:
    code = (
        "import sys, airflow_provider_assemblyai.operators.assemblyai as m; "
        "assert 'airflow_provider_assemblyai.purge' not in sys.modules, 'purge imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


DAG_FILE = """
from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_assemblyai.operators.assemblyai import PurgeTranscriptsOperator

with DAG(dag_id="purge_ids", schedule=None, start_date=datetime(2025, 1, 1), catchup=False):

    @task
    def find_ids() -> list[str]:
        return {ids!r}

    PurgeTranscriptsOperator(
        task_id="purge",
        transcript_ids={transcript_ids},
        fail_on_error={fail_on_error!r},
        audit_path={audit_path!r},
    )
"""


@pytest.fixture
def emu(assemblyai_emulator: AssemblyAIEmulator, set_connection: Callable[..., None]) -> AssemblyAIEmulator:
    set_connection(region="us", base_url=assemblyai_emulator.base_url("us"), max_retries=0)
    return assemblyai_emulator


def run_purge_dag(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    ids: list[str],
    *,
    transcript_ids: str = "find_ids()",
    fail_on_error: bool = True,
) -> Any:
    folder = tmp_path / "dags"
    folder.mkdir()
    audit = f"{tmp_path.as_uri()}/audit/{{{{ run_id }}}}.jsonl"
    (folder / "purge_ids.py").write_text(
        DAG_FILE.format(ids=ids, transcript_ids=transcript_ids, fail_on_error=fail_on_error, audit_path=audit)
    )
    return run_dag(monkeypatch, folder, "purge_ids")


def purge_summary(dag_run: Any) -> Any:
    ti = next(ti for ti in dag_run.get_task_instances() if ti.task_id == "purge")
    return ti.xcom_pull(task_ids="purge", key="purge_summary")


def test_ids_from_an_upstream_task_are_deleted(
    emu: AssemblyAIEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ids = [emu.create_transcript("us") for _ in range(5)]
    gone = emu.create_transcript("us", deleted=True)

    run = run_purge_dag(monkeypatch, tmp_path, [*ids, gone])

    assert task_states(run)[("purge", -1)] == "success"
    summary = xcom(run, "purge")
    assert (summary["matched"], summary["deleted"], summary["already_deleted"]) == (6, 5, 1)
    assert sorted(summary["deleted_ids"]) == sorted(ids)
    assert all(emu.is_deleted("us", tid) for tid in ids)
    audit = Path(summary["audit_path"].removeprefix("file://")).read_text(encoding="utf-8")
    assert len(audit.splitlines()) == 6
    assert '"run_id"' in audit
    assert TEST_API_KEY not in audit + str(summary)


def test_rendered_ids_that_are_not_a_list_fail_before_any_request(
    emu: AssemblyAIEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ids = [emu.create_transcript("us")]

    run = run_purge_dag(monkeypatch, tmp_path, ids, transcript_ids="'{{ ti.xcom_pull(\"find_ids\") }}'")

    assert task_states(run)[("purge", -1)] == "failed"
    assert emu.requests == []


@pytest.mark.parametrize("fail_on_error", [True, False])
def test_partial_failure_with_fail_on_error(
    emu: AssemblyAIEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fail_on_error: bool
) -> None:
    ids = [emu.create_transcript("us") for _ in range(6)]
    emu.fail_next("error", times=2, method="DELETE")

    run = run_purge_dag(monkeypatch, tmp_path, ids, fail_on_error=fail_on_error)

    state = task_states(run)[("purge", -1)]
    if fail_on_error:
        assert state == "failed"
        summary = purge_summary(run)  # pushed before the task failed
    else:
        assert state == "success"
        summary = xcom(run, "purge")
        assert purge_summary(run) is None
    assert (summary["matched"], summary["deleted"], summary["failed"]) == (6, 4, 2)
    assert all(not emu.is_deleted("us", tid) for tid in summary["failed_ids"])
    assert all(emu.is_deleted("us", tid) for tid in summary["deleted_ids"])
