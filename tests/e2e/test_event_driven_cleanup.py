"""
The event-driven cleanup example in a real Airflow 3 (scheduler, triggerer, dag-processor, api-server on
SQLite), against the emulator in this test process, on a manual clock.

The example's watcher polls every 2 s and redelivers after 20 s here (60 s and 10 min in the file;
the only changes). Two transcripts are
already finished when Airflow starts, and ten finish while it runs, two at a time about every 5 s
(the emulator's clock is advanced; "over a minute" compressed to about 25 s). After the fourth has
finished the triggerer is SIGKILLed; four more finish while it is down; it is then started again.
Every one of the twelve must be exported and deleted, whatever the number of runs they arrive in,
no task may fail (a transcript offered again after the restart is a successful no-op), and no
transcript outside the watcher's statuses, window or region may be read or deleted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_assemblyai.testing import AssemblyAIEmulator, ManualClock
from tests.conftest import TEST_API_KEY
from tests.e2e.airflow_runner import AirflowCluster

pytestmark = [pytest.mark.airflow_e2e, pytest.mark.af3_only, pytest.mark.timeout(600)]

DAG_ID = "example_assemblyai_event_driven_cleanup"
EXAMPLE = Path(__file__).resolve().parents[2] / "example_dags" / f"{DAG_ID}.py"
POLL_SECONDS = 2
REDELIVER_SECONDS = 20
STEP_SECONDS = 5.0  # real seconds between two finishing steps
WAIT_S = 300.0


def shortened_example() -> str:
    """The example DAG file, its watcher polling every 2 s (not 60 s) and redelivering after 20 s."""
    source = EXAMPLE.read_text()
    changes = {
        "poll_interval=60,": f"poll_interval={POLL_SECONDS},",
        "redeliver_after=timedelta(minutes=10),": f"redeliver_after=timedelta(seconds={REDELIVER_SECONDS}),",
    }
    for old, new in changes.items():
        assert source.count(old) == 1, old
        source = source.replace(old, new)
    return source


def wait_for(
    condition: Callable[[], bool], what: str, cluster: AirflowCluster, timeout: float = WAIT_S
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"never happened within {timeout}s: {what}\n{cluster.logs_tail()}")


def transcript_paths(emu: AssemblyAIEmulator, ids: list[str]) -> list[Any]:
    """Requests that named one of ``ids`` (a GET or DELETE of the transcript itself)."""
    paths = {f"/v2/transcript/{tid}" for tid in ids}
    return [r for r in emu.requests if r.path in paths]


@pytest.fixture(scope="module")
def emulator() -> Iterator[AssemblyAIEmulator]:
    with AssemblyAIEmulator(api_keys=(TEST_API_KEY,), clock=ManualClock()) as emu:
        yield emu


@pytest.fixture(scope="module")
def world(emulator: AssemblyAIEmulator) -> dict[str, Any]:
    """The account before Airflow starts: what must be cleaned up, and what must not be touched."""
    now = emulator.clock.now()
    backlog = [
        emulator.create_transcript("us", status="completed", created=now - timedelta(hours=h)) for h in (1, 5)
    ]
    finishing = [
        emulator.create_transcript(
            "us", status="processing", completes_in=60 * (i // 2 + 1), audio_duration=10 + i
        )
        for i in range(10)
    ]
    untouched = {
        "outside the window": emulator.create_transcript(
            "us", status="completed", created=now - timedelta(days=2)
        ),
        "not a watched status": emulator.create_transcript("us", status="error", error="Download error"),
        "finished later": emulator.create_transcript("us", status="processing", completes_in=3600),
        "deleted already": emulator.create_transcript("us", status="completed", deleted=True),
        "another region": emulator.create_transcript("eu", status="completed"),
    }
    return {"backlog": backlog, "finishing": finishing, "untouched": untouched}


@pytest.fixture(scope="module")
def cleanup_run(
    emulator: AssemblyAIEmulator, world: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    exports = tmp_path_factory.mktemp("exports")
    env = emulator.connection_env("us", api_key=TEST_API_KEY)
    env.update(
        {
            "AIRFLOW_VAR_ASSEMBLYAI_EXPORT_URI": exports.as_uri(),
            # A killed triggerer's watcher is taken over once its heartbeat is this old.
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
            # A loaded machine (SQLite, one api-server worker) can be slow to start a task: give the
            # task runner's calls to the api-server time, instead of failing tasks for the machine.
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
        }
    )
    cluster = AirflowCluster(tmp_path_factory.mktemp("airflow-home"), extra_env=env)
    cluster.dags.mkdir(parents=True)
    (cluster.dags / EXAMPLE.name).write_text(shortened_example())
    all_ids = world["backlog"] + world["finishing"]

    def handled(ids: list[str]) -> bool:
        cluster.check_alive()
        return all(emulator.is_deleted("us", t) and (exports / f"{t}.json").exists() for t in ids)

    with cluster:
        cluster.wait_for_dag(DAG_ID)
        wait_for(lambda: handled(world["backlog"]), "the backlog exported and deleted", cluster)
        finishing = world["finishing"]
        for _ in range(2):  # transcripts 0-3 finish, two at a time
            emulator.advance(60)
            time.sleep(STEP_SECONDS)
        # Kill the triggerer once the watcher read the last two that finished (it fires their events next).
        wait_for(lambda: len(transcript_paths(emulator, finishing[2:4])) >= 2, "the watcher's reads", cluster)
        cluster.kill("triggerer")
        for _ in range(2):  # 4-7 finish while no triggerer runs
            emulator.advance(60)
            time.sleep(STEP_SECONDS)
        cluster.restart("triggerer")
        emulator.advance(60)  # 8-9 finish once it is back
        wait_for(lambda: handled(all_ids), "every transcript exported and deleted", cluster)
        wait_for(lambda: _idle(cluster), "no run left queued or running", cluster)
        yield {
            "cluster": cluster,
            "exports": exports,
            "runs": cluster.api("GET", f"/dags/{DAG_ID}/dagRuns?limit=100")["dag_runs"],
            "events": cluster.api("GET", "/assets/events?limit=100")["asset_events"],
            "instances": [
                ti
                for run in cluster.api("GET", f"/dags/{DAG_ID}/dagRuns?limit=100")["dag_runs"]
                for ti in cluster.api("GET", f"/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances")[
                    "task_instances"
                ]
            ],
            "ids_per_run": [
                cluster.api(
                    "GET",
                    f"/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances/transcript_ids/xcomEntries/return_value",
                )["value"]
                for run in cluster.api("GET", f"/dags/{DAG_ID}/dagRuns?limit=100")["dag_runs"]
            ],
            "triggerer_log": cluster.log("triggerer"),
        }


def _idle(cluster: AirflowCluster) -> bool:
    runs = cluster.api("GET", f"/dags/{DAG_ID}/dagRuns?limit=100")["dag_runs"]
    return bool(runs) and all(run["state"] in ("success", "failed") for run in runs)


def test_every_finished_transcript_is_exported_and_deleted(
    cleanup_run: dict[str, Any], world: dict[str, Any], emulator: AssemblyAIEmulator
) -> None:
    for tid in world["backlog"] + world["finishing"]:
        assert emulator.is_deleted("us", tid)
        exported = json.loads((cleanup_run["exports"] / f"{tid}.json").read_text())
        assert exported["id"] == tid
        assert exported["status"] == "completed"
        assert exported["text"] != "Deleted by user."  # a repeat never overwrote the export
    assert sorted(p.name for p in cleanup_run["exports"].iterdir()) == sorted(
        f"{tid}.json" for tid in world["backlog"] + world["finishing"]
    )


def test_no_task_failed_and_each_run_handled_each_id_once(
    cleanup_run: dict[str, Any], world: dict[str, Any]
) -> None:
    assert [run["state"] for run in cleanup_run["runs"]] == ["success"] * len(cleanup_run["runs"])
    failed = [ti for ti in cleanup_run["instances"] if ti["state"] != "success"]
    assert failed == [], cleanup_run["cluster"].logs_tail()
    for ids in cleanup_run["ids_per_run"]:
        assert len(ids) == len(set(ids))  # one export and one delete per transcript id in a run
    handled = {tid for ids in cleanup_run["ids_per_run"] for tid in ids}
    assert handled == set(world["backlog"] + world["finishing"])
    offered = [event["extra"]["payload"]["transcript_id"] for event in cleanup_run["events"]]
    assert set(offered) == handled
    print(  # for the report: how the work was spread
        f"{len(cleanup_run['runs'])} runs, {len(offered)} events for {len(handled)} transcripts "
        f"({len(offered) - len(handled)} repeats)"
    )


def test_the_triggerer_was_killed_and_the_watcher_restarted(cleanup_run: dict[str, Any]) -> None:
    log = cleanup_run["triggerer_log"]
    assert log.count("Starting the triggerer") == 2
    assert "Trigger fired event" in log.split("Starting the triggerer")[2]  # the new one offered too


def test_nothing_outside_the_watchers_scope_was_touched(
    cleanup_run: dict[str, Any], world: dict[str, Any], emulator: AssemblyAIEmulator
) -> None:
    untouched: dict[str, str] = world["untouched"]
    assert transcript_paths(emulator, list(untouched.values())) == []
    for why, tid in untouched.items():
        region = "eu" if why == "another region" else "us"
        assert emulator.is_deleted(region, tid) == (why == "deleted already"), why
    assert emulator.requests_for(region="eu") == []
    assert all(r.key_matched for r in emulator.requests)


def test_the_key_is_in_no_log(cleanup_run: dict[str, Any]) -> None:
    cluster = cleanup_run["cluster"]
    logs = [path for path in cluster.home.rglob("*.log*") if path.is_file()]
    assert logs
    assert [path for path in logs if TEST_API_KEY in path.read_text(errors="replace")] == []
