"""
Bad input is refused with a clear ValueError naming the value, before any request is sent: transcript
ids at every entry point (literal, or rendered from templates, params and XCom), operator arguments,
and connections.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import respx
from airflow import __version__ as airflow_version
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_assemblyai.exceptions import AssemblyAIConfigError
from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook
from airflow_provider_assemblyai.operators.assemblyai import (
    DeleteTranscriptOperator,
    PurgeTranscriptsOperator,
)
from airflow_provider_assemblyai.sensors.assemblyai import TranscriptSensor
from airflow_provider_assemblyai.testing import AssemblyAIEmulator
from airflow_provider_assemblyai.triggers.assemblyai import TranscriptStatusTrigger
from tests.conftest import AIRFLOW_DAG_TEST_HIDES_TASK_ERRORS, AIRFLOW_DROPS_NON_OBJECT_EXTRAS, TEST_API_KEY
from tests.example_dags.dag_runner import run_dag, task_states
from tests.reliability.helpers import BAD_ID_NAMES, BAD_IDS, dag_folder

CONTEXT: Any = {}
bad_ids = pytest.mark.parametrize(("value", "named"), BAD_IDS, ids=BAD_ID_NAMES)


def no_requests(emu: AssemblyAIEmulator) -> None:
    assert emu.requests == []


# -- transcript ids, given literally --------------------------------------------------------------


@bad_ids
def test_sync_hook_refuses_bad_ids(emu: AssemblyAIEmulator, value: object, named: str) -> None:
    hook = AssemblyAIHook()
    calls: list[tuple[str, Callable[[], object]]] = [
        ("transcript_id", lambda: hook.get_transcript(value)),  # type: ignore[arg-type]
        ("transcript_id", lambda: hook.delete_transcript(value)),  # type: ignore[arg-type]
    ]
    if value is not None:  # before_id=None / after_id=None mean "no filter"
        calls.append(("before_id", lambda: next(hook.list_transcripts(before_id=value))))  # type: ignore[arg-type]
        calls.append(("after_id", lambda: next(hook.list_transcripts(after_id=value))))  # type: ignore[arg-type]
    for argument, call in calls:
        with pytest.raises(ValueError, match=argument) as info:
            call()
        assert named in str(info.value)
        assert not isinstance(info.value, AssemblyAIConfigError)
    no_requests(emu)


@bad_ids
async def test_async_hook_refuses_bad_ids(
    emu: AssemblyAIEmulator, value: object, named: str, shared_clients: None
) -> None:
    hook = AssemblyAIHook()
    for call in (hook.aget_transcript, hook.adelete_transcript):
        with pytest.raises(ValueError, match="transcript_id") as info:
            await call(value)  # type: ignore[arg-type]
        assert named in str(info.value)
    if value is not None:
        with pytest.raises(ValueError, match="before_id"):
            await hook.alist_transcripts(before_id=value).__anext__()  # type: ignore[arg-type]
    no_requests(emu)


@bad_ids
def test_delete_operator_refuses_bad_ids(emu: AssemblyAIEmulator, value: object, named: str) -> None:
    """A literal string id is checked when the task is defined (as the sensor does); the rest when it runs."""
    for deferrable in (False, True):
        with pytest.raises(ValueError, match="transcript_id") as info:
            DeleteTranscriptOperator(
                task_id="delete",
                transcript_id=value,  # type: ignore[arg-type]
                deferrable=deferrable,
            ).execute(CONTEXT)
        assert named in str(info.value)
    no_requests(emu)


def _define_and_run_sensor(value: object, deferrable: bool) -> None:
    """A literal string id is checked when the task is defined; anything else when it runs."""
    sensor = TranscriptSensor(
        task_id="sense",
        transcript_id=value,  # type: ignore[arg-type]
        deferrable=deferrable,
        poke_interval=0.01,
        timeout=5,
    )
    sensor.execute(CONTEXT)


@bad_ids
def test_sensor_refuses_bad_ids(emu: AssemblyAIEmulator, value: object, named: str) -> None:
    for deferrable in (False, True):
        with pytest.raises(ValueError, match="transcript_id") as info:
            _define_and_run_sensor(value, deferrable)
        assert named in str(info.value)
    no_requests(emu)


@bad_ids
def test_trigger_refuses_bad_ids(value: object, named: str) -> None:
    with pytest.raises(ValueError, match="transcript_id") as info:
        TranscriptStatusTrigger(transcript_id=value)  # type: ignore[arg-type]
    assert named in str(info.value)


@bad_ids
def test_purge_operator_refuses_bad_ids(emu: AssemblyAIEmulator, value: object, named: str) -> None:
    good = emu.create_transcript("us", status="completed")
    with pytest.raises(ValueError, match=r"transcript_ids\[1\]: transcript_id") as info:
        PurgeTranscriptsOperator(task_id="purge", transcript_ids=[good, value])
    assert named in str(info.value)
    no_requests(emu)
    assert not emu.is_deleted("us", good)  # nothing of a list with one bad id is deleted


def _define_and_run_purge(value: object) -> None:
    """Lists and literal strings are checked when the task is defined; anything else when it runs."""
    PurgeTranscriptsOperator(task_id="purge", transcript_ids=value).execute(CONTEXT)


@pytest.mark.parametrize(
    ("value", "named"),
    [("../x", "'../x'"), ("abc", "'abc'"), (12345, "int '12345'"), ({"id": "abc"}, "dict \"{'id': 'abc'}\"")],
)
def test_purge_operator_refuses_transcript_ids_that_are_not_a_list(
    emu: AssemblyAIEmulator, value: object, named: str
) -> None:
    with pytest.raises(ValueError, match="transcript_ids must be a list") as info:
        _define_and_run_purge(value)
    assert named in str(info.value)
    no_requests(emu)


# -- transcript ids rendered from templates ------------------------------------------------------

RENDERED = [
    ("../x", "'../x'"),
    ("a/b", "'a/b'"),
    ("x?y", "'x?y'"),
    ("a%2Fb", "'a%2Fb'"),
    ("   ", "'   '"),
    ("", "empty"),
    ("\u0430bc", "'\u0430bc'"),
]
NATIVE_ONLY = [(["abc"], "['abc']"), ({"id": "abc"}, "{'id': 'abc'}"), (12345, "int 12345")]


def _render(operator: Any, value: object) -> None:
    """Render the operator's template fields with Airflow's own machinery and a ``tid`` param."""
    operator.render_template_fields({"params": {"tid": value, "ids": ["abc", value]}})


# Jinja renders 12345 to the string "12345", a well-formed id: only native rendering makes it an int.
TEMPLATED_CASES = [
    pytest.param(value, named, native, id=f"{'native' if native else 'jinja'}-{value!r}")
    for native in (False, True)
    for value, named in RENDERED + NATIVE_ONLY
    if native or not isinstance(value, int)
]


@pytest.mark.parametrize(("value", "named", "native"), TEMPLATED_CASES)
def test_templated_ids_are_checked_after_rendering(
    emu: AssemblyAIEmulator, native: bool, value: object, named: str
) -> None:
    if not native and (value, named) in NATIVE_ONLY:
        named = repr(str(value))  # a Jinja template renders it to its string form
    with DAG(
        dag_id="templated",
        schedule=None,
        start_date=datetime(2025, 1, 1),
        render_template_as_native_obj=native,
    ):
        delete = DeleteTranscriptOperator(task_id="delete", transcript_id="{{ params.tid }}")
        sensor = TranscriptSensor(task_id="sense", transcript_id="{{ params.tid }}", timeout=5)
        purge = PurgeTranscriptsOperator(task_id="purge", transcript_ids="{{ params.ids }}")
    for operator in (delete, sensor):
        _render(operator, value)
        if native:
            assert operator.transcript_id == value
        with pytest.raises(ValueError, match="transcript_id") as info:
            operator.execute(CONTEXT)
        assert named in str(info.value)
    _render(purge, value)
    with pytest.raises(ValueError, match="transcript_ids") as info:
        purge.execute(CONTEXT)
    expected = "transcript_ids[1]" if native else "must be a list"  # Jinja renders the list to a str
    assert expected in str(info.value)
    no_requests(emu)


TEMPLATED_DAG = """
    from __future__ import annotations

    from datetime import datetime

    from airflow.providers.common.compat.sdk import DAG, task

    from airflow_provider_assemblyai.operators.assemblyai import (
        DeleteTranscriptOperator,
        PurgeTranscriptsOperator,
    )
    from airflow_provider_assemblyai.sensors.assemblyai import TranscriptSensor

    with DAG(
        dag_id="reliability_templated_ids",
        schedule=None,
        start_date=datetime(2025, 1, 1),
        catchup=False,
        render_template_as_native_obj=True,
        params={"tid": "", "good": ""},
    ):

        @task
        def ids_with_a_bad_one(good: str) -> list[str]:
            return [good, "../admin"]

        @task
        def a_dict() -> dict[str, str]:
            return {"id": "abc"}

        listed = ids_with_a_bad_one("{{ params.good }}")
        mapping = a_dict()
        DeleteTranscriptOperator(task_id="delete_from_param", transcript_id="{{ params.tid }}")
        DeleteTranscriptOperator(task_id="delete_from_xcom_list", transcript_id=listed)
        TranscriptSensor(
            task_id="sensor_from_xcom_dict", transcript_id=mapping, deferrable=True, timeout=30
        )
        PurgeTranscriptsOperator(task_id="purge_from_xcom_list", transcript_ids=listed)
        PurgeTranscriptsOperator(task_id="purge_from_xcom_dict", transcript_ids=mapping)
"""


def test_bad_ids_from_params_and_xcom_fail_the_tasks_in_a_dag_run(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    emu: AssemblyAIEmulator,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setenv("_AIRFLOW__SKIP_DATABASE_EXECUTOR_COMPATIBILITY_CHECK", "1")  # Airflow 2 sensors
    good = emu.create_transcript("us", status="completed")
    folder = dag_folder(tmp_path, {"templated": TEMPLATED_DAG})

    run = run_dag(monkeypatch, folder, "reliability_templated_ids", {"tid": "a/../../b", "good": good})

    states = task_states(run)
    assert states.pop(("ids_with_a_bad_one", -1)) == "success"
    assert states.pop(("a_dict", -1)) == "success"
    assert set(states.values()) == {"failed"}, states
    output = "\n".join([*capfd.readouterr(), caplog.text])
    messages = (
        "transcript_id 'a/../../b' is not a valid transcript id",
        "transcript_id must be a string, got list [",
        "transcript_id must be a string, got dict {'id': 'abc'}",
        "transcript_ids[1]: transcript_id '../admin' is not a valid transcript id",
        "transcript_ids must be a list of transcript ids, got dict",
    )
    # Airflow 3.0's in-process dag.test() logs some task errors where pytest does not capture them; the
    # states above and the absence of requests below still show every task failed before any request.
    if not airflow_version.startswith("3.0."):
        assert [message for message in messages if message not in output] == []
    no_requests(emu)
    assert not emu.is_deleted("us", good)


NOTHING_DAG = """
    from __future__ import annotations

    from datetime import datetime

    from airflow.providers.common.compat.sdk import DAG, task

    from airflow_provider_assemblyai.operators.assemblyai import (
        DeleteTranscriptOperator,
        PurgeTranscriptsOperator,
    )
    from airflow_provider_assemblyai.sensors.assemblyai import TranscriptSensor

    NOTHING = "{{ ti.xcom_pull('produce') }}"

    for native in (False, True):
        with DAG(
            dag_id=f"reliability_upstream_returned_nothing_{'native' if native else 'text'}",
            schedule=None,
            start_date=datetime(2025, 1, 1),
            catchup=False,
            render_template_as_native_obj=native,
        ):

            @task
            def produce() -> None:
                return None  # e.g. a lookup that found nothing

            nothing = produce()
            nothing >> [
                DeleteTranscriptOperator(task_id="delete_missing_ok", transcript_id=NOTHING, missing_ok=True),
                DeleteTranscriptOperator(
                    task_id="delete_missing_ok_deferrable",
                    transcript_id=NOTHING,
                    missing_ok=True,
                    deferrable=True,
                ),
                TranscriptSensor(task_id="sensor", transcript_id=NOTHING, timeout=30, poke_interval=1),
                TranscriptSensor(
                    task_id="sensor_deferrable", transcript_id=NOTHING, timeout=30, deferrable=True
                ),
                PurgeTranscriptsOperator(task_id="purge_ids", transcript_ids=NOTHING),
            ]
"""


@pytest.mark.parametrize("rendering", ["text", "native"])
def test_an_upstream_task_that_returned_nothing_fails_every_task_before_any_request(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    emu: AssemblyAIEmulator,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    rendering: str,
) -> None:
    """None renders as 'None' (or None natively): never a request, and never a green missing_ok task."""
    caplog.set_level(logging.INFO)
    monkeypatch.setenv("_AIRFLOW__SKIP_DATABASE_EXECUTOR_COMPATIBILITY_CHECK", "1")  # Airflow 2 sensors
    old = emu.seed(5, "us", span=timedelta(days=60))  # what a purge of "None" must not touch
    folder = dag_folder(tmp_path, {"nothing": NOTHING_DAG})

    run = run_dag(monkeypatch, folder, f"reliability_upstream_returned_nothing_{rendering}")

    states = task_states(run)
    assert states.pop(("produce", -1)) == "success"
    assert states == {
        (task_id, -1): "failed"
        for task_id in (
            "delete_missing_ok",
            "delete_missing_ok_deferrable",
            "sensor",
            "sensor_deferrable",
            "purge_ids",
        )
    }
    no_requests(emu)
    assert emu.ids("us", deleted=True) == []
    assert len(old) == 5
    if AIRFLOW_DAG_TEST_HIDES_TASK_ERRORS:
        return  # the states and the emulator above are the proof there; the text is checked on other lanes
    output = "\n".join([*capfd.readouterr(), caplog.text])
    shown = "None" if rendering == "native" else "'None'"
    assert (
        f"transcript_id is {shown}: there is no transcript id, most likely because an upstream task" in output
    )
    assert f"transcript_ids is {shown}: there is no list of transcript ids" in output


# -- operator arguments --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "named"),
    [
        (lambda: PurgeTranscriptsOperator(task_id="p", older_than=timedelta(0), concurrency=0), "got 0"),
        (lambda: PurgeTranscriptsOperator(task_id="p", older_than=timedelta(0), concurrency=-3), "got -3"),
        (lambda: PurgeTranscriptsOperator(task_id="p", older_than=timedelta(0), concurrency=101), "got 101"),
        (lambda: PurgeTranscriptsOperator(task_id="p", older_than=timedelta(0), concurrency=2.5), "got 2.5"),
        (
            lambda: PurgeTranscriptsOperator(task_id="p", older_than=timedelta(0), concurrency=True),
            "got True",
        ),
        (lambda: PurgeTranscriptsOperator(task_id="p", older_than=timedelta(days=-1)), "days=-1"),
        (lambda: PurgeTranscriptsOperator(task_id="p", older_than=30), "got 30"),
        (
            lambda: PurgeTranscriptsOperator(
                task_id="p", older_than=timedelta(days=30), created_before="2025-01-01"
            ),
            "'2025-01-01'",
        ),
        (lambda: PurgeTranscriptsOperator(task_id="p"), "older_than=timedelta(0)"),
        (lambda: PurgeTranscriptsOperator(task_id="p", created_before="yesterday"), "'yesterday'"),
        (
            lambda: PurgeTranscriptsOperator(task_id="p", older_than=timedelta(0), statuses=["done"]),
            "'done'",
        ),
        (
            lambda: PurgeTranscriptsOperator(task_id="p", older_than=timedelta(0), statuses=["queued"]),
            "queued",
        ),
        (lambda: PurgeTranscriptsOperator(task_id="p", older_than=timedelta(0), statuses=[]), "[]"),
        (
            lambda: PurgeTranscriptsOperator(task_id="p", older_than=timedelta(0), max_deletions=0),
            "got 0",
        ),
        (
            lambda: PurgeTranscriptsOperator(task_id="p", older_than=timedelta(0), max_requests_per_second=0),
            "got 0",
        ),
        (lambda: DeleteTranscriptOperator(task_id="d", transcript_id="a", poll_interval=0), "got 0"),
        (lambda: DeleteTranscriptOperator(task_id="d", transcript_id="a", poll_interval=-1), "got -1"),
        (
            lambda: DeleteTranscriptOperator(task_id="d", transcript_id="a", poll_interval=float("nan")),
            "nan",
        ),
        (lambda: TranscriptStatusTrigger(transcript_id="a", poll_interval=0), "got 0"),
        (lambda: TranscriptStatusTrigger(transcript_id="a", poll_interval=-0.5), "got -0.5"),
        (lambda: TranscriptStatusTrigger(transcript_id="a", target_statuses=["done"]), "'done'"),
        (
            lambda: TranscriptStatusTrigger(
                transcript_id="a", target_statuses=["error"], failure_statuses=["error"]
            ),
            "['error']",
        ),
        (lambda: TranscriptStatusTrigger(transcript_id="a", end_time=float("inf")), "inf"),
        (lambda: TranscriptSensor(task_id="s", transcript_id="a", poke_interval=0), "got 0"),
        (lambda: TranscriptSensor(task_id="s", transcript_id="a", poke_interval=-5), "got -5"),
        (lambda: TranscriptSensor(task_id="s", transcript_id="a", timeout=0), "got 0"),
        (lambda: TranscriptSensor(task_id="s", transcript_id="a", timeout=-60), "got -60"),
        (
            lambda: TranscriptSensor(task_id="s", transcript_id="a", timeout=timedelta(seconds=-1)),
            "days=-1",
        ),
        (
            lambda: TranscriptSensor(task_id="s", transcript_id="a", target_statuses=["finished"]),
            "'finished'",
        ),
        (lambda: TranscriptSensor(task_id="s", transcript_id="a", failure_statuses=["oops"]), "'oops'"),
    ],
)
def test_bad_operator_arguments_are_refused_when_the_task_is_defined(
    make: Callable[[], object], named: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(named)):
        make()


# -- connections ---------------------------------------------------------------------------------


def _raw_connection(monkeypatch: pytest.MonkeyPatch, **fields: object) -> None:
    if AIRFLOW_DROPS_NON_OBJECT_EXTRAS and isinstance(fields.get("extra"), str):
        pytest.skip("Airflow 3.0 and 3.1 drop this connection themselves (test_garbage_extra checks that)")
    monkeypatch.setenv("AIRFLOW_CONN_ASSEMBLYAI_DEFAULT", json.dumps({"conn_type": "assemblyai", **fields}))


BAD_CONNECTIONS: list[tuple[dict[str, object], str]] = [
    ({"extra": {"region": "us"}}, "no API key"),
    ({"password": "", "extra": {}}, "no API key"),
    ({"password": "   ", "extra": {}}, "no API key"),
    ({"password": TEST_API_KEY, "extra": {"region": "ap"}}, "unknown region 'ap'"),
    ({"password": TEST_API_KEY, "extra": {"region": "EU-west"}}, "unknown region 'EU-west'"),
    ({"password": TEST_API_KEY, "extra": {"base_url": "http://api.assemblyai.com"}}, "plain http"),
    ({"password": TEST_API_KEY, "extra": {"base_url": "http://192.168.1.20:8080"}}, "plain http"),
    ({"password": TEST_API_KEY, "extra": {"base_url": "api.assemblyai.com"}}, "'api.assemblyai.com'"),
    ({"password": TEST_API_KEY, "extra": {"base_url": "ftp://api.assemblyai.com"}}, "ftp://"),
    ({"password": TEST_API_KEY, "extra": {"base_url": "https://x.example?k=1"}}, "invalid base_url"),
    ({"password": TEST_API_KEY, "extra": "{not json"}, "not valid JSON"),
    ({"password": TEST_API_KEY, "extra": "[1, 2]"}, "not a JSON object"),
    ({"password": TEST_API_KEY, "extra": {"timeout": -1}}, "timeout=-1"),
    ({"password": TEST_API_KEY, "extra": {"timeout": "soon"}}, "timeout='soon'"),
    ({"password": TEST_API_KEY, "extra": {"max_retries": -2}}, "max_retries=-2"),
]
bad_connections = pytest.mark.parametrize(
    ("fields", "named"),
    BAD_CONNECTIONS,
    ids=[
        "no-password",
        "empty-password",
        "blank-password",
        "region-ap",
        "region-eu-west",
        "http-remote",
        "http-lan",
        "no-scheme",
        "ftp",
        "query",
        "garbage-json",
        "json-list",
        "negative-timeout",
        "text-timeout",
        "negative-retries",
    ],
)


@bad_connections
def test_bad_connections_are_refused_before_any_request(
    monkeypatch: pytest.MonkeyPatch, api: respx.MockRouter, fields: dict[str, object], named: str
) -> None:
    _raw_connection(monkeypatch, **fields)
    anything = api.route().respond(200, json={"id": "abc", "status": "completed"})
    hook = AssemblyAIHook()
    calls: list[Callable[[], object]] = [
        lambda: hook.get_transcript("abc"),
        lambda: hook.delete_transcript("abc"),
        lambda: DeleteTranscriptOperator(task_id="d", transcript_id="abc").execute(CONTEXT),
        lambda: PurgeTranscriptsOperator(task_id="p", transcript_ids=["abc"]).execute(CONTEXT),
        lambda: TranscriptSensor(task_id="s", transcript_id="abc", timeout=5).poke(CONTEXT),
    ]
    for call in calls:
        with pytest.raises(AssemblyAIConfigError) as info:
            call()
        assert named in str(info.value)
        assert "'assemblyai_default'" in str(info.value)  # names the connection
        assert TEST_API_KEY not in str(info.value)
    ok, message = hook.test_connection()
    assert not ok
    assert named in message
    assert not anything.called


@bad_connections
async def test_bad_connections_are_refused_on_the_async_path(
    monkeypatch: pytest.MonkeyPatch,
    api: respx.MockRouter,
    fields: dict[str, object],
    named: str,
    shared_clients: None,
) -> None:
    _raw_connection(monkeypatch, **fields)
    anything = api.route().respond(200, json={"id": "abc", "status": "completed"})
    with pytest.raises(AssemblyAIConfigError) as info:
        await AssemblyAIHook().adelete_transcript("abc")
    assert named in str(info.value)
    event = await asyncio.wait_for(TranscriptStatusTrigger(transcript_id="abc").run().__anext__(), 30)
    assert event.payload["status"] == "error"
    assert named in event.payload["message"]
    assert not anything.called
