"""
Run DAGs with ``dag.test()`` on Airflow 2.11 and 3.x, and read back their task states and XComs.

Airflow 3 (3.1+) makes ``dag.test()`` sync the DAG from its ``dags-folder`` bundle into the
metadata DB first, so the DAG must live in a file of that folder: :func:`run_dag` points the bundle
(and Airflow 2's ``dags_folder``) at the folder the DAG is loaded from.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
from pathlib import Path
from typing import Any

import pytest
from airflow import __version__ as airflow_version

AIRFLOW_3 = int(airflow_version.split(".")[0]) >= 3

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"


def dag_bag(folder: Path) -> Any:
    """A DagBag of ``folder`` only (no Airflow examples), on every lane."""
    # airflow.dag_processing.dagbag from Airflow 3.1 on; airflow.models.dagbag on 2.11 and 3.0
    moved = importlib.util.find_spec("airflow.dag_processing.dagbag") is not None
    module = "airflow.dag_processing.dagbag" if moved else "airflow.models.dagbag"
    dag_bag_class = importlib.import_module(module).DagBag
    kwargs: dict[str, Any] = {}
    if "include_examples" in inspect.signature(dag_bag_class.__init__).parameters:  # Airflow 2
        kwargs["include_examples"] = False
    return dag_bag_class(dag_folder=str(folder), **kwargs)


def use_dag_folder(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Make ``folder`` the dags folder (Airflow 2) and the ``dags-folder`` bundle (Airflow 3)."""
    bundle = {
        "name": "dags-folder",
        "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
        "kwargs": {"path": str(folder), "refresh_interval": 0},
    }
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([bundle]))
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(folder))


def run_dag(
    monkeypatch: pytest.MonkeyPatch, folder: Path, dag_id: str, run_conf: dict[str, Any] | None = None
) -> Any:
    """Load ``dag_id`` from ``folder``, run it with ``dag.test(run_conf=...)`` and return the DagRun."""
    use_dag_folder(monkeypatch, folder)
    bag = dag_bag(folder)
    assert bag.import_errors == {}
    dag = bag.get_dag(dag_id)
    assert dag is not None, f"{dag_id} not found in {folder}"
    return dag.test(run_conf=run_conf)


def task_states(dag_run: Any) -> dict[tuple[str, int], str]:
    """``{(task_id, map_index): state}`` of every task instance of the run."""
    return {(ti.task_id, ti.map_index): str(ti.state) for ti in dag_run.get_task_instances()}


def xcom(dag_run: Any, task_id: str, map_index: int = -1) -> Any:
    """The ``return_value`` XCom of one task instance of the run."""
    for ti in dag_run.get_task_instances():
        if ti.task_id == task_id and ti.map_index == map_index:
            return ti.xcom_pull(task_ids=task_id, map_indexes=map_index)
    raise AssertionError(f"no task instance {task_id}[{map_index}] in {task_states(dag_run)}")
