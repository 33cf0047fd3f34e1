"""
Per-task overhead: DeleteTranscriptOperator.execute versus raw httpx, and mapped tasks versus a purge.

1. ``execute``: N deletions through a fresh operator each (a new hook, client and connection, as in
   a task instance) against the emulator with zero latency, next to N raw httpx calls doing the same
   requests: on one pooled client (the bare round trip) and with ``httpx.delete()`` (a new client
   per call, what a PythonOperator would do). One fresh transcript per call.
2. ``dag.test()``: 100 deletions as 100 mapped DeleteTranscriptOperator task instances, versus one
   PurgeTranscriptsOperator with the 100 ids, each in one ``dag.test()`` run (wall time each).

Both run in child processes (``python -m bench.task_overhead execute|dagtest``), the emulator in its
own (:mod:`bench._emulator`); ``dag.test()`` gets a throwaway AIRFLOW_HOME whose SQLite database is
copied from a migrated template kept in the temp directory (``airflow db migrate`` runs once).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._emulator import API_KEY, EmulatorProcess, Protocol, child_env, project_root

CONN_ID = "assemblyai_bench"
FULL = {"executes": 50, "dag_ids": 100}
SMOKE = {"executes": 5, "dag_ids": 5}

#: (name, requests per call): the ``execute`` variants, in the order they run.
VARIANTS: tuple[tuple[str, str], ...] = (
    ("raw httpx DELETE, pooled client (round-trip floor)", "DELETE"),
    ("raw httpx.delete(), new client per call", "DELETE"),
    ("DeleteTranscriptOperator.execute, wait_for_completion=False", "DELETE"),
    ("raw httpx GET + DELETE, pooled client (round-trip floor)", "GET+DELETE"),
    ("DeleteTranscriptOperator.execute (default: GET, then DELETE)", "GET+DELETE"),
)


# --------------------------------------------------------------------------- execute (child)


def _execute_child() -> None:
    """Time every variant on its own fresh transcripts; report ms per call."""
    import httpx

    from airflow_provider_assemblyai.operators.assemblyai import DeleteTranscriptOperator

    protocol = Protocol()
    protocol.reply({"ready": True})
    job = json.loads(sys.stdin.readline())
    base, headers = job["base_url"], {"Authorization": API_KEY}
    pooled = httpx.Client(headers=headers)

    def url(tid: str) -> str:
        return f"{base}/v2/transcript/{tid}"

    def raw_pooled_delete(tid: str) -> dict[str, Any]:
        return dict(pooled.delete(url(tid)).raise_for_status().json())

    def raw_fresh_delete(tid: str) -> dict[str, Any]:
        return dict(httpx.delete(url(tid), headers=headers).raise_for_status().json())

    def raw_pooled_get_delete(tid: str) -> dict[str, Any]:
        pooled.get(url(tid)).raise_for_status().json()
        return raw_pooled_delete(tid)

    def operator(wait: bool) -> Callable[[str], dict[str, Any]]:
        def call(tid: str) -> dict[str, Any]:
            op = DeleteTranscriptOperator(
                task_id="delete", transcript_id=tid, assemblyai_conn_id=CONN_ID, wait_for_completion=wait
            )
            result = op.execute({})  # type: ignore[arg-type]
            op.hook.close()
            assert result is not None
            return result

        return call

    calls = [raw_pooled_delete, raw_fresh_delete, operator(False), raw_pooled_get_delete, operator(True)]
    results = []
    for call, ids in zip(calls, job["ids"], strict=True):
        call(ids[0])  # warm-up: imports, first connection lookup; not timed
        started, cpu = time.perf_counter(), time.process_time()
        bodies = [call(tid) for tid in ids[1:]]
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        wrong = [b.get("id") for tid, b in zip(ids[1:], bodies, strict=True) if b.get("id") != tid]
        deleted_shape = all(str(b.get("audio_url", "")).endswith("deleted_by_user") for b in bodies)
        results.append({"wall_s": wall, "cpu_s": cpu, "wrong": wrong, "deleted_shape": deleted_shape})
    pooled.close()
    protocol.reply({"results": results})


# --------------------------------------------------------------------------- dag.test (child)

DAG_FILE = '''
"""Benchmark DAGs: 100 mapped deletions versus one purge of the same number of ids."""
import json
import os

from airflow.sdk import DAG

from airflow_provider_assemblyai.operators.assemblyai import (
    DeleteTranscriptOperator,
    PurgeTranscriptsOperator,
)

IDS = json.loads(os.environ.get("BENCH_DAG_IDS", '{"mapped": [], "purge": []}'))

with DAG("bench_mapped_deletes", schedule=None):
    DeleteTranscriptOperator.partial(task_id="delete", assemblyai_conn_id="assemblyai_bench").expand(
        transcript_id=IDS["mapped"]
    )

with DAG("bench_one_purge", schedule=None):
    PurgeTranscriptsOperator(
        task_id="purge", assemblyai_conn_id="assemblyai_bench", transcript_ids=IDS["purge"]
    )
'''


def _dagtest_child(folder: str) -> None:
    """Run both DAGs with ``dag.test()``; report wall times and task states."""
    from airflow import __version__ as airflow_version

    if int(airflow_version.split(".")[0]) >= 3:
        from airflow.dag_processing.dagbag import DagBag
    else:  # pragma: no cover - the bench runs on Airflow 3
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    protocol = Protocol()
    bag = DagBag(dag_folder=folder)
    if bag.import_errors:
        raise AssertionError(f"the benchmark DAG file failed to import: {bag.import_errors}")
    report = {}
    for dag_id in ("bench_mapped_deletes", "bench_one_purge"):
        dag = bag.get_dag(dag_id)
        started = time.perf_counter()
        dag_run = dag.test()
        wall = time.perf_counter() - started
        tis = dag_run.get_task_instances()
        xcom = None
        if dag_id == "bench_one_purge":
            xcom = tis[0].xcom_pull(task_ids="purge")
        report[dag_id] = {
            "wall_s": wall,
            "run_state": str(dag_run.state),
            "task_instances": len(tis),
            "succeeded": sum(1 for ti in tis if str(ti.state) == "success"),
            "purge_deleted": None if xcom is None else xcom.get("deleted"),
        }
    protocol.reply(report)


def _airflow_home(parent: str) -> str:
    """A throwaway AIRFLOW_HOME with a migrated SQLite DB, copied from a template made once."""
    from importlib.metadata import version

    template = Path(tempfile.gettempdir(), f"assemblyai-bench-airflow-{version('apache-airflow')}")
    if not (template / "airflow.db").exists():
        template.mkdir(exist_ok=True)
        airflow = Path(sys.executable).with_name("airflow")
        env = child_env({"AIRFLOW_HOME": str(template), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
        subprocess.run([str(airflow), "db", "migrate"], env=env, check=True, capture_output=True, timeout=600)
    home = Path(parent, "airflow-home")
    home.mkdir()
    shutil.copy2(template / "airflow.db", home / "airflow.db")
    return str(home)


# --------------------------------------------------------------------------- the benchmark


def _child(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    with log.open("w") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "bench.task_overhead", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            cwd=project_root(),
            env=env,
        )


def _answer(child: subprocess.Popen[str], log: Path, timeout: float = 900) -> dict[str, Any]:
    assert child.stdout is not None
    line = child.stdout.readline()
    if not line:
        child.wait(timeout)
        raise AssertionError(f"a child failed (code {child.returncode}): {log.read_text()[-3000:]}")
    answer: dict[str, Any] = json.loads(line)
    return answer


def _execute_rows(emulator: EmulatorProcess, n: int, work: Path) -> list[dict[str, Any]]:
    env = child_env({f"AIRFLOW_CONN_{CONN_ID.upper()}": emulator.connection_json(None)})
    child = _child(["execute"], env, work / "execute.log")
    assert child.stdin is not None
    try:
        _answer(child, work / "execute.log")
        ids = [emulator.call("create", n=n + 1)["ids"] for _ in VARIANTS]
        child.stdin.write(json.dumps({"base_url": emulator.url(None), "ids": ids}) + "\n")
        child.stdin.flush()
        results = _answer(child, work / "execute.log")["results"]
    finally:
        child.stdin.close()
        child.wait(60)
    deleted = emulator.call("stats", ids=[tid for batch in ids for tid in batch])["deleted"]
    if deleted != len(VARIANTS) * (n + 1):
        raise AssertionError(f"execute: {deleted} of {len(VARIANTS) * (n + 1)} transcripts were deleted")
    rows = []
    floors: dict[str, float] = {}
    for (name, requests), result in zip(VARIANTS, results, strict=True):
        if result["wrong"] or not result["deleted_shape"]:
            raise AssertionError(f"{name}: wrong answers {result['wrong'][:3]}")
        per_call = 1000 * result["wall_s"] / n
        floors.setdefault(requests, per_call)
        rows.append(
            {
                "benchmark": "task overhead",
                "case": name,
                "requests": requests,
                "calls": n,
                "ms_per_call": round(per_call, 2),
                "cpu_ms_per_call": round(1000 * result["cpu_s"] / n, 2),
                "overhead_ms": round(per_call - floors[requests], 2),
            }
        )
    return rows


def _dagtest_rows(emulator: EmulatorProcess, n: int, work: Path) -> list[dict[str, Any]]:
    folder = work / "dags"
    folder.mkdir()
    (folder / "bench_task_overhead.py").write_text(textwrap.dedent(DAG_FILE).lstrip())
    ids = {"mapped": emulator.call("create", n=n)["ids"], "purge": emulator.call("create", n=n)["ids"]}
    bundle = {
        "name": "dags-folder",
        "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
        "kwargs": {"path": str(folder), "refresh_interval": 0},
    }
    env = child_env(
        {
            "AIRFLOW_HOME": _airflow_home(str(work)),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(folder),
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps([bundle]),
            f"AIRFLOW_CONN_{CONN_ID.upper()}": emulator.connection_json(None),
            "BENCH_DAG_IDS": json.dumps(ids),
        }
    )
    child = _child(["dagtest", str(folder)], env, work / "dagtest.log")
    try:
        report = _answer(child, work / "dagtest.log")
    finally:
        child.wait(120)
    deleted = emulator.call("stats", ids=ids["mapped"] + ids["purge"])["deleted"]
    mapped, purge = report["bench_mapped_deletes"], report["bench_one_purge"]
    if deleted != 2 * n or mapped["succeeded"] != n or purge["purge_deleted"] != n:
        raise AssertionError(f"dag.test: {deleted} of {2 * n} deleted; report {report}")
    return [
        {
            "benchmark": "task overhead",
            "case": f"dag.test(): {n} mapped DeleteTranscriptOperator tasks",
            "requests": f"{2 * n} (GET+DELETE each)",
            "calls": n,
            "dag_test_wall_s": round(mapped["wall_s"], 2),
            "ms_per_call": round(1000 * mapped["wall_s"] / n, 1),
        },
        {
            "benchmark": "task overhead",
            "case": f"dag.test(): one PurgeTranscriptsOperator, {n} ids",
            "requests": f"{2 * n} (GET+DELETE each)",
            "calls": n,
            "dag_test_wall_s": round(purge["wall_s"], 2),
            "ms_per_call": round(1000 * purge["wall_s"] / n, 1),
        },
    ]


def run(smoke: bool) -> list[dict[str, Any]]:
    """
    Run both parts; raise if any deletion is missing or wrong.

    :param smoke: 5 executes per variant and a 5-id dag.test(), checks only.
    """
    params = SMOKE if smoke else FULL
    with tempfile.TemporaryDirectory() as work, EmulatorProcess() as emulator:
        rows = _execute_rows(emulator, params["executes"], Path(work))
        rows += _dagtest_rows(emulator, params["dag_ids"], Path(work))
    return rows


if __name__ == "__main__":
    if sys.argv[1:2] == ["execute"]:
        _execute_child()
    elif sys.argv[1:2] == ["dagtest"]:
        _dagtest_child(sys.argv[2])
    else:
        print(json.dumps(run(smoke="--smoke" in sys.argv), indent=1))
