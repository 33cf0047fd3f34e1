"""
The wait-export-delete example in a real Airflow 3: scheduler (LocalExecutor), triggerer, dag-processor,
api-server, on SQLite, against the emulator running in this test process.

Proves that the sensor really deferred to the real triggerer: the task instance is seen in state
``deferred`` through the REST API while the run goes on, and the trigger log the triggerer process
wrote for this task instance shows it starting the trigger, the trigger's own poll-loop line, and
the success event it fired. The transcript completes
about 10 s after the run starts, and never before the triggerer polled it twice.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_assemblyai.testing import AssemblyAIEmulator, ManualClock
from tests.conftest import TEST_API_KEY
from tests.e2e.airflow_runner import AirflowCluster

pytestmark = [pytest.mark.airflow_e2e, pytest.mark.af3_only, pytest.mark.timeout(420)]

DAG_ID = "example_assemblyai_wait_export_delete"
EXAMPLE = Path(__file__).resolve().parents[2] / "example_dags" / f"{DAG_ID}.py"
RUN_ID = "e2e_wait_export_delete"
SENSOR = "wait_for_transcript"
TASKS = {"wait_for_transcript", "export_text", "export_json", "delete_transcript"}
COMPLETES_AFTER_S = 10.0
RUN_TIMEOUT_S = 200.0

FAN_IN_DAG_ID = "e2e_assemblyai_sensor_fan_in"
FAN_IN_RUN_ID = "e2e_fan_in"
FAN_IN_SENSORS = 24  # above BOARD_MIN_WAITERS, so the triggerer's triggers share a status board
FAN_IN_DAG = f"""
import pendulum
from airflow.sdk import DAG, task

from airflow_provider_assemblyai.sensors.assemblyai import TranscriptSensor

with DAG(
    "{FAN_IN_DAG_ID}",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_tasks=64,
):

    @task
    def transcript_ids(dag_run=None):
        return dag_run.conf["ids"]

    TranscriptSensor.partial(
        task_id="wait", deferrable=True, poke_interval=1.0, timeout=600
    ).expand(transcript_id=transcript_ids())
"""


def complete_when_polled(emu: AssemblyAIEmulator, tid: str, started: float, stop: threading.Event) -> None:
    """Finish the transcript once ~10 s passed and it was polled 3 times (the poke + 2 trigger polls)."""
    while not stop.is_set():
        polls = [r for r in emu.requests if r.method == "GET" and r.path.endswith(tid)]
        if len(polls) >= 3 and time.monotonic() - started >= COMPLETES_AFTER_S:
            emu.advance(600)
            return
        stop.wait(0.1)


@pytest.fixture(scope="module")
def emulator() -> Iterator[AssemblyAIEmulator]:
    with AssemblyAIEmulator(api_keys=(TEST_API_KEY,), clock=ManualClock()) as emu:
        yield emu


@pytest.fixture(scope="module")
def cluster(
    emulator: AssemblyAIEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowCluster]:
    home = tmp_path_factory.mktemp("airflow-home")
    airflow = AirflowCluster(home, extra_env=emulator.connection_env("us", api_key=TEST_API_KEY))
    airflow.dags.mkdir(parents=True)
    shutil.copy(EXAMPLE, airflow.dags / EXAMPLE.name)
    (airflow.dags / f"{FAN_IN_DAG_ID}.py").write_text(FAN_IN_DAG)
    with airflow:
        yield airflow


@pytest.fixture(scope="module")
def finished_run(
    cluster: AirflowCluster, emulator: AssemblyAIEmulator, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Trigger the example through the REST API and follow it to the end, sampling the sensor's state."""
    cluster.wait_for_dag(DAG_ID)
    tid = emulator.create_transcript("us", status="queued", completes_in=300, audio_duration=42)
    export_dir = tmp_path_factory.mktemp("exports")
    started = time.monotonic()
    stop = threading.Event()
    watcher = threading.Thread(target=complete_when_polled, args=(emulator, tid, started, stop), daemon=True)
    watcher.start()
    try:
        cluster.api(
            "POST",
            f"/dags/{DAG_ID}/dagRuns",
            {
                "dag_run_id": RUN_ID,
                "logical_date": None,
                "conf": {"transcript_id": tid, "export_dir": str(export_dir)},
            },
        )
        sensor_states: list[str | None] = []
        run: dict[str, Any] = {}
        while time.monotonic() - started < RUN_TIMEOUT_S:
            cluster.check_alive()
            sensor = cluster.api("GET", f"/dags/{DAG_ID}/dagRuns/{RUN_ID}/taskInstances/{SENSOR}")
            if not sensor_states or sensor_states[-1] != sensor["state"]:
                sensor_states.append(sensor["state"])
            run = cluster.api("GET", f"/dags/{DAG_ID}/dagRuns/{RUN_ID}")
            if run["state"] in ("success", "failed"):
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"run not finished after {RUN_TIMEOUT_S}s:\n{cluster.logs_tail()}")
    finally:
        stop.set()
        watcher.join()
    instances = cluster.api("GET", f"/dags/{DAG_ID}/dagRuns/{RUN_ID}/taskInstances")["task_instances"]
    return {
        "tid": tid,
        "run": run,
        "states": {ti["task_id"]: ti["state"] for ti in instances},
        "sensor_states": sensor_states,
        "sensor_xcom": cluster.api(
            "GET", f"/dags/{DAG_ID}/dagRuns/{RUN_ID}/taskInstances/{SENSOR}/xcomEntries/return_value"
        )["value"],
        "seconds": time.monotonic() - started,
        "export_dir": export_dir,
    }


def test_run_succeeds(finished_run: dict[str, Any], cluster: AirflowCluster) -> None:
    assert finished_run["run"]["state"] == "success", cluster.logs_tail()
    assert finished_run["states"] == dict.fromkeys(TASKS, "success")
    assert finished_run["sensor_xcom"] == {
        "transcript_id": finished_run["tid"],
        "status": "completed",
        "audio_duration": 42,
        "error": None,
    }
    tid = finished_run["tid"]
    assert sorted(p.name for p in finished_run["export_dir"].iterdir()) == [f"{tid}.json", f"{tid}.txt"]


def test_sensor_was_deferred_to_the_real_triggerer(
    finished_run: dict[str, Any], cluster: AirflowCluster
) -> None:
    # Seen through the API while the run went on: the sensor sat in "deferred", then ran again.
    states = finished_run["sensor_states"]
    assert "deferred" in states, states
    assert states[-1] == "success"
    # The triggerer process wrote this task instance's trigger log (named after the triggerer job):
    # it started the trigger, our trigger's own line came from its poll loop, and it fired success.
    task_logs = cluster.home / "logs" / f"dag_id={DAG_ID}" / f"run_id={RUN_ID}" / f"task_id={SENSOR}"
    [trigger_log] = sorted(task_logs.glob("attempt=1.log.trigger.*.log"))
    log = trigger_log.read_text(errors="replace")
    name = f"{DAG_ID}/{RUN_ID}/{SENSOR}/-1/1"
    assert re.search(rf"trigger {re.escape(name)} \(ID \d+\) starting", log), log
    assert f"Transcript {finished_run['tid']} reached status completed" in log
    fired = [line for line in log.splitlines() if "Trigger fired event" in line]
    assert len(fired) == 1, log
    assert finished_run["tid"] in fired[0]
    assert "'status': 'success'" in fired[0]
    assert "Starting the triggerer" in cluster.log("triggerer")


def test_emulator_saw_the_polls_and_exactly_one_delete(
    finished_run: dict[str, Any], emulator: AssemblyAIEmulator
) -> None:
    tid = finished_run["tid"]
    assert emulator.is_deleted("us", tid)
    assert [r.path for r in emulator.requests if r.method == "DELETE"] == [f"/v2/transcript/{tid}"]
    gets = [r for r in emulator.requests if r.method == "GET" and r.path.endswith(tid)]
    assert len(gets) >= 3 + 1 + 2  # poke + trigger polls, the resumed sensor, both exports
    assert all(r.key_matched for r in emulator.requests)


def test_the_key_is_in_no_log(finished_run: dict[str, Any], cluster: AirflowCluster) -> None:
    logs = [path for path in cluster.home.rglob("*.log*") if path.is_file()]
    assert any("logs" in path.parts for path in logs)  # the task logs were written
    leaks = [path for path in logs if TEST_API_KEY in path.read_text(errors="replace")]
    assert leaks == []


# -- many deferred sensors in one real triggerer share one status board ------------------------------


def _count(emu: AssemblyAIEmulator, ids: list[str]) -> tuple[int, int]:
    """(GETs of these transcripts, list requests) in the emulator's log so far."""
    wanted = {f"/v2/transcript/{tid}" for tid in ids}
    requests = emu.requests
    gets = sum(1 for r in requests if r.method == "GET" and r.path in wanted)
    lists = sum(1 for r in requests if (r.method, r.path) == ("GET", "/v2/transcript"))
    return gets, lists


@pytest.fixture(scope="module")
def fan_in_run(
    finished_run: dict[str, Any], cluster: AirflowCluster, emulator: AssemblyAIEmulator
) -> dict[str, Any]:
    """24 mapped deferrable sensors: wait until all are deferred, watch 6 s of polling, then finish."""
    cluster.wait_for_dag(FAN_IN_DAG_ID)
    ids = [emulator.create_transcript("us", status="processing", completes_in=3600) for _ in range(24)]
    cluster.api(
        "POST",
        f"/dags/{FAN_IN_DAG_ID}/dagRuns",
        {"dag_run_id": FAN_IN_RUN_ID, "logical_date": None, "conf": {"ids": ids}},
    )
    path = f"/dags/{FAN_IN_DAG_ID}/dagRuns/{FAN_IN_RUN_ID}"
    started = time.monotonic()
    while time.monotonic() - started < RUN_TIMEOUT_S:
        cluster.check_alive()
        states = [
            ti["state"]
            for ti in cluster.api("GET", f"{path}/taskInstances/wait/listMapped")["task_instances"]
        ]
        if states.count("deferred") == FAN_IN_SENSORS:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"the sensors were not all deferred: {states}\n{cluster.logs_tail()}")
    time.sleep(2.0)  # every trigger has joined the board and polled once
    before = _count(emulator, ids)
    time.sleep(6.0)  # 1 s poke_interval: without the board, about 24 x 6 = 144 GETs
    after = _count(emulator, ids)
    emulator.advance(7200)
    while time.monotonic() - started < RUN_TIMEOUT_S:
        run = cluster.api("GET", path)
        if run["state"] in ("success", "failed"):
            break
        time.sleep(0.5)
    mapped = cluster.api("GET", f"{path}/taskInstances/wait/listMapped")["task_instances"]
    return {
        "run": run,
        "states": [ti["state"] for ti in mapped],
        "window": (after[0] - before[0], after[1] - before[1]),
        "total": _count(emulator, ids),
    }


def test_many_deferred_sensors_share_a_status_board(
    fan_in_run: dict[str, Any], cluster: AirflowCluster
) -> None:
    assert fan_in_run["run"]["state"] == "success", cluster.logs_tail()
    assert fan_in_run["states"] == ["success"] * FAN_IN_SENSORS
    gets_in_window, lists_in_window = fan_in_run["window"]
    # While all 24 were processing, the triggerer listed them instead of polling each one.
    assert lists_in_window >= 4, fan_in_run
    assert gets_in_window <= 2, fan_in_run
