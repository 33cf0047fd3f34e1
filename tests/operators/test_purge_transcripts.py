"""
PurgeTranscriptsOperator: constructor validation, and real ``dag.test()`` runs against the emulator
(XComArg ids, templated fields checked before any request, fail_on_error both ways).
"""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_assemblyai.audit import read_audit
from airflow_provider_assemblyai.operators.assemblyai import PurgeTranscriptsOperator, _purge_audit_fields
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
def connection_extra() -> dict[str, object]:
    """``emu``'s connection without hook retries: each fault reaches the purge."""
    return {"max_retries": 0}


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
    report = read_audit(summary["audit_path"], anchors=[summary["audit_anchor"]])
    assert report.ok, report.problems
    assert len(report.records) == 6
    assert {(r.dag_id, r.run_id, r.try_number) for r in report.records} == {("purge_ids", run.run_id, 1)}
    assert sorted(r.transcript_id for r in report.records if r.outcome == "deleted") == sorted(ids)
    folder = Path(summary["audit_path"].removeprefix("file://"))
    stored = "".join(p.read_text(encoding="utf-8") for p in folder.rglob("*.jsonl"))
    assert TEST_API_KEY not in stored + str(summary)


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


class _TaskInstance:
    dag_id, task_id, run_id, try_number = "retention", "purge", "scheduled__2024-06-01", 2


def test_audit_fields_name_the_task_with_an_integer_try_number() -> None:
    context: Any = {"ti": _TaskInstance(), "run_id": "scheduled__2024-06-01"}
    assert _purge_audit_fields(context) == {
        "dag_id": "retention",
        "task_id": "purge",
        "run_id": "scheduled__2024-06-01",
        "try_number": 2,
    }
    assert _purge_audit_fields({}) == {}  # type: ignore[typeddict-item]


# -- per-run arguments: templated, checked when plain, and again once rendered ----------------------


def test_per_run_arguments_are_template_fields() -> None:
    assert {
        "transcript_ids",
        "older_than",
        "created_before",
        "statuses",
        "max_deletions",
        "is_dry_run",
    } <= set(PurgeTranscriptsOperator.template_fields)
    op = PurgeTranscriptsOperator(
        task_id="templated",
        older_than="{{ params.older_than }}",
        statuses="{{ params.statuses }}",
        max_deletions="{{ params.max_deletions }}",
        dry_run="{{ dag_run.conf.get('dry_run', False) }}",
    )
    assert (op.older_than, op.is_dry_run) == (
        "{{ params.older_than }}",
        "{{ dag_run.conf.get('dry_run', False) }}",
    )
    # BaseOperator's own dry_run() (3.0 has none) is untouched
    assert not hasattr(op, "dry_run") or callable(op.dry_run)


@pytest.mark.parametrize(
    ("changes", "normalised"),
    [
        ({"older_than": "P30D"}, {"older_than": timedelta(days=30)}),
        ({"older_than": "pt12h"}, {"older_than": timedelta(hours=12)}),
        ({"older_than": "P0D"}, {"older_than": timedelta(0)}),
        ({"statuses": "completed, error"}, {"statuses": ("completed", "error")}),
        ({"statuses": "['error']"}, {"statuses": ("error",)}),
        ({"max_deletions": "250"}, {"max_deletions": 250}),
        ({"max_deletions": "None"}, {"max_deletions": None}),
        ({"dry_run": "True"}, {"is_dry_run": True}),
        ({"dry_run": " false "}, {"is_dry_run": False}),
        ({"dry_run": "yes"}, {"is_dry_run": True}),
    ],
)
def test_plain_text_values_are_parsed_when_the_task_is_defined(
    changes: dict[str, Any], normalised: dict[str, Any]
) -> None:
    op = PurgeTranscriptsOperator(**(OK | changes))
    assert {name: getattr(op, name) for name in normalised} == normalised


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"older_than": "30"},
            "got '30', a number without a unit (days? seconds?), refused rather than guessed",
        ),
        ({"older_than": 2.5}, "got 2.5, a number without a unit"),
        ({"older_than": "P1M"}, "months and years have no fixed length, use days"),
        (
            {"older_than": "30 days, 0:00:00"},
            "render an ISO 8601 duration instead, e.g. 'P{{ params.days }}D'",
        ),
        ({"older_than": "-P1D"}, "got '-P1D'"),
        ({"dry_run": "maybe"}, "dry_run must be true or false"),
        ({"dry_run": 1}, "got 1: refusing to guess whether to delete"),
        ({"dry_run": None}, "got None"),
        ({"max_deletions": "ten"}, "max_deletions must be an integer >= 1 (or None), got 'ten'"),
        ({"max_deletions": ""}, "got ''"),
        ({"statuses": "completed,queued"}, "never deletes queued"),
        ({"statuses": "[completed"}, "statuses must be a list of statuses, got '[completed'"),
    ],
)
def test_bad_plain_per_run_values_are_refused_when_the_task_is_defined(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        PurgeTranscriptsOperator(**(OK | changes))


PER_RUN_DAG = """
from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_assemblyai.operators.assemblyai import PurgeTranscriptsOperator

with DAG(
    dag_id="purge_per_run",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={"older_than": "P30D", "statuses": "completed,error", "max_deletions": 100},
):
    PurgeTranscriptsOperator(
        task_id="purge",
        dry_run="{{ dag_run.conf.get('dry_run', False) }}",
        older_than="{{ params.older_than }}",
        statuses="{{ params.statuses }}",
        max_deletions="{{ params.max_deletions }}",
    )
"""


def test_one_dag_triggered_as_a_dry_run_then_for_real(
    emu: AssemblyAIEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The issue's use: trigger with {"dry_run": true} first, then for real, from params and conf."""
    now = datetime.now(timezone.utc)
    old = [emu.create_transcript("us", created=now - timedelta(days=40 + i)) for i in range(4)]
    queued = emu.create_transcript("us", status="queued", created=now - timedelta(days=45))
    recent = emu.create_transcript("us", created=now - timedelta(days=5))
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "purge_per_run.py").write_text(PER_RUN_DAG, encoding="utf-8")

    preview = run_dag(monkeypatch, folder, "purge_per_run", {"dry_run": True})

    assert task_states(preview)[("purge", -1)] == "success"
    summary = xcom(preview, "purge")
    assert (summary["dry_run"], summary["would_delete"], summary["deleted"]) == (True, 4, 0)
    assert sorted(summary["would_delete_ids"]) == sorted(old)
    assert emu.requests_for(method="DELETE") == []

    real = run_dag(monkeypatch, folder, "purge_per_run", {"dry_run": "false"})

    assert task_states(real)[("purge", -1)] == "success"
    summary = xcom(real, "purge")
    assert (summary["dry_run"], summary["deleted"]) == (False, 4)
    assert all(emu.is_deleted("us", tid) for tid in old)
    assert not emu.is_deleted("us", queued)
    assert not emu.is_deleted("us", recent)


@pytest.mark.parametrize(
    "conf",
    [
        {"dry_run": "maybe"},
        {"older_than": "30"},  # a param overridden by the run's conf: no unit
        {"statuses": "completed,processing"},
        {"max_deletions": "lots"},
    ],
)
def test_wrongly_rendered_per_run_values_fail_before_any_request(
    emu: AssemblyAIEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, conf: dict[str, str]
) -> None:
    emu.create_transcript("us", created=datetime.now(timezone.utc) - timedelta(days=40))
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "purge_per_run.py").write_text(PER_RUN_DAG, encoding="utf-8")

    run = run_dag(monkeypatch, folder, "purge_per_run", conf)

    assert task_states(run)[("purge", -1)] == "failed"
    assert emu.requests == []
