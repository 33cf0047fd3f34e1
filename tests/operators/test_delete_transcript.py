"""
DeleteTranscriptOperator: respx for exact wire shapes and error mapping, the emulator for real HTTP
behaviour (waiting, lost answers, logs), and one ``dag.test()`` run for templating, mapping and
deferral through the real TranscriptStatusTrigger.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from airflow.providers.common.compat.sdk import DAG, TaskDeferred

from airflow_provider_assemblyai.exceptions import (
    AssemblyAIAuthError,
    AssemblyAIError,
    AssemblyAIRateLimitError,
    AssemblyAIServerError,
    AssemblyAITransportError,
    TranscriptNotFoundError,
)
from airflow_provider_assemblyai.operators.assemblyai import DeleteTranscriptOperator
from airflow_provider_assemblyai.testing import AssemblyAIEmulator, ManualClock
from airflow_provider_assemblyai.triggers.assemblyai import TranscriptStatusTrigger
from tests.api_bodies import LOOKUP_ERROR as LOOKUP_ERROR_TEXT
from tests.api_bodies import deleted_body, transcript_body
from tests.conftest import TEST_API_KEY, complete_after_polls
from tests.example_dags.dag_runner import run_dag, task_states, xcom

BASE = "http://127.0.0.1:9"  # respx answers; nothing is sent
TID = "5551722-f677-48a6-9287-39c0aafd9ac1"
URL = f"{BASE}/v2/transcript/{TID}"
CONTEXT: Any = {}
LOOKUP_ERROR = {"error": LOOKUP_ERROR_TEXT}


def transcript(status: str = "completed", **fields: Any) -> dict[str, Any]:
    """A transcript as GET returns it, with a field the provider's model does not know."""
    return transcript_body(TID, status, future_field={"nested": [1, 2]}, **fields)


def deleted() -> dict[str, Any]:
    """The deleted shape, with unknown fields the API may add one day."""
    return deleted_body(TID) | {
        "future_field": {"nested": [1, 2]},
        "region": "us",
        "brand_new_field": ["kept", None],
    }


def make(**kwargs: Any) -> DeleteTranscriptOperator:
    kwargs.setdefault("transcript_id", TID)
    return DeleteTranscriptOperator(task_id="delete_transcript", **kwargs)


@pytest.fixture
def api(api: respx.MockRouter, set_connection: Callable[..., None]) -> respx.MockRouter:
    """The respx router, with ``assemblyai_default`` on BASE without retries."""
    set_connection(base_url=BASE, max_retries=0)
    return api


@pytest.fixture
def emulator(set_connection: Callable[..., None]) -> Iterator[AssemblyAIEmulator]:
    """An emulator accepting TEST_API_KEY, with assemblyai_default on its US region."""
    with AssemblyAIEmulator(api_keys=(TEST_API_KEY,)) as emu:
        set_connection(base_url=emu.base_url("us"), region="us")
        yield emu


# -- success and the XCom --------------------------------------------------------------------------


def test_returns_the_deleted_body_verbatim(api: respx.MockRouter) -> None:
    get = api.get(URL).respond(200, json=transcript())
    delete = api.delete(URL).respond(200, json=deleted())

    result = make().execute(CONTEXT)

    assert result == deleted()
    assert list(result) == list(deleted())  # every field, unknown ones included, none added
    assert json.loads(json.dumps(result)) == deleted()
    assert get.call_count == 1
    assert delete.call_count == 1
    assert delete.calls.last.request.headers["Authorization"] == TEST_API_KEY


def test_already_deleted_transcript_is_deleted_again_idempotently(api: respx.MockRouter) -> None:
    api.get(URL).respond(200, json=deleted())
    delete = api.delete(URL).respond(200, json=deleted())

    assert make().execute(CONTEXT) == deleted()
    assert delete.call_count == 1


def test_a_200_without_the_deleted_shape_is_not_reported_as_deleted(api: respx.MockRouter) -> None:
    api.get(URL).respond(200, json=transcript())
    api.delete(URL).respond(200, json=transcript())

    with pytest.raises(AssemblyAIError, match="without its deleted shape"):
        make().execute(CONTEXT)


# -- missing_ok ------------------------------------------------------------------------------------


NOT_FOUND = [
    pytest.param(404, {"error": "Not found"}, id="404"),
    pytest.param(400, LOOKUP_ERROR, id="400-lookup"),
]


@pytest.mark.parametrize(("status", "body"), NOT_FOUND)
@pytest.mark.parametrize("wait", [True, False], ids=["get-first", "delete-at-once"])
def test_missing_ok_logs_a_warning_and_returns_none(
    api: respx.MockRouter, logs: Callable[[], str], status: int, body: dict[str, str], wait: bool
) -> None:
    get = api.get(URL).respond(status, json=body)
    delete = api.delete(URL).respond(status, json=body)

    assert make(missing_ok=True, wait_for_completion=wait).execute(CONTEXT) is None

    assert (get.call_count, delete.call_count) == ((1, 0) if wait else (0, 1))
    text = logs()
    assert f"Transcript {TID} not found; nothing to delete (missing_ok=True): AssemblyAI " in text
    assert "(connection 'assemblyai_default', region us) failed with HTTP" in text
    assert "A transcript exists only in the region where it was created: if it is in the EU region" in text
    assert "Deleted transcript" not in text


@pytest.mark.parametrize(("status", "body"), NOT_FOUND)
@pytest.mark.parametrize("wait", [True, False], ids=["get-first", "delete-at-once"])
def test_missing_transcript_fails_without_missing_ok(
    api: respx.MockRouter, status: int, body: dict[str, str], wait: bool
) -> None:
    api.get(URL).respond(status, json=body)
    api.delete(URL).respond(status, json=body)

    with pytest.raises(TranscriptNotFoundError) as caught:
        make(wait_for_completion=wait).execute(CONTEXT)
    assert caught.value.status_code == status


def test_missing_ok_against_the_emulator(emulator: AssemblyAIEmulator) -> None:
    unknown = "0000-not-a-real-transcript"

    assert make(transcript_id=unknown, missing_ok=True).execute(CONTEXT) is None
    with pytest.raises(TranscriptNotFoundError):
        make(transcript_id=unknown, wait_for_completion=False).execute(CONTEXT)
    assert [(r.method, r.status) for r in emulator.requests] == [("GET", 400), ("DELETE", 400)]


# -- errors propagate ------------------------------------------------------------------------------


ERRORS = [
    pytest.param(
        httpx.Response(401, json={"error": "Authentication error"}), AssemblyAIAuthError, 0, id="401"
    ),
    pytest.param(
        httpx.Response(429, json={"error": "Too many requests"}, headers={"Retry-After": "0"}),
        AssemblyAIRateLimitError,
        0,
        id="429",
    ),
    pytest.param(httpx.Response(400, json={"error": "Bad request"}), AssemblyAIError, 0, id="400"),
    pytest.param(httpx.Response(500, json={"error": "Internal error"}), AssemblyAIServerError, 1, id="500"),
    pytest.param(httpx.Response(503), AssemblyAIServerError, 1, id="503-empty"),
    pytest.param(httpx.ConnectError("refused"), AssemblyAITransportError, 0, id="connect-refused"),
    pytest.param(httpx.ReadTimeout("timed out"), AssemblyAITransportError, 1, id="read-timeout"),
]


@pytest.mark.parametrize(("answer", "error", "checks"), ERRORS)
def test_delete_errors_propagate_with_their_class(
    api: respx.MockRouter, answer: httpx.Response | Exception, error: type[Exception], checks: int
) -> None:
    """A failed DELETE raises its error; when it may have taken effect, one GET checks first."""
    get = api.get(URL).respond(200, json=transcript())
    if isinstance(answer, Exception):
        api.delete(URL).mock(side_effect=answer)
    else:
        api.delete(URL).mock(return_value=answer)

    with pytest.raises(error) as caught:
        make(wait_for_completion=False).execute(CONTEXT)

    assert type(caught.value) is error
    assert TEST_API_KEY not in str(caught.value)
    assert get.call_count == checks


@pytest.mark.parametrize(("answer", "error", "checks"), ERRORS)
def test_get_errors_propagate_and_nothing_is_deleted(
    api: respx.MockRouter, answer: httpx.Response | Exception, error: type[Exception], checks: int
) -> None:
    if isinstance(answer, Exception):
        api.get(URL).mock(side_effect=answer)
    else:
        api.get(URL).mock(return_value=answer)
    delete = api.delete(URL).respond(200, json=deleted())

    with pytest.raises(error) as caught:
        make().execute(CONTEXT)

    assert type(caught.value) is error
    assert delete.call_count == 0


@pytest.mark.parametrize("kind", ["drop_after_effect", "truncated_json"])
def test_a_delete_whose_answer_was_lost_is_confirmed_by_a_get(
    emulator: AssemblyAIEmulator, set_connection: Callable[..., None], logs: Callable[[], str], kind: Any
) -> None:
    """Nothing lost: the DELETE took effect but its answer broke, so the task succeeds, not fails."""
    set_connection(base_url=emulator.base_url("us"), max_retries=0)
    tid = emulator.create_transcript("us", status="completed")
    emulator.fail_next(kind, method="DELETE")

    result = make(transcript_id=tid, wait_for_completion=False).execute(CONTEXT)

    assert result == emulator.get("us", tid)
    assert result["text"] == "Deleted by user."
    assert [(r.method, r.fault) for r in emulator.requests] == [("DELETE", kind), ("GET", None)]
    assert "checking whether it took effect" in logs()


# -- waiting for a terminal status -----------------------------------------------------------------


@pytest.mark.parametrize("final_status", ["completed", "error"])
def test_waits_until_terminal_then_deletes(
    set_connection: Callable[..., None], logs: Callable[[], str], final_status: str
) -> None:
    with AssemblyAIEmulator(api_keys=(TEST_API_KEY,), clock=ManualClock()) as emulator:
        set_connection(base_url=emulator.base_url("us"), region="us")
        tid = emulator.create_transcript("us", status="queued", completes_in=60, final_status=final_status)
        stop = threading.Event()
        watcher = threading.Thread(target=complete_after_polls, args=(emulator, tid, 2, stop), daemon=True)
        watcher.start()
        try:
            result = make(transcript_id=tid, poll_interval=0.1).execute(CONTEXT)
        finally:
            stop.set()
            watcher.join(10)
        _check_waited_then_deleted(emulator, tid, result, logs(), final_status)


def _check_waited_then_deleted(
    emulator: AssemblyAIEmulator, tid: str, result: Any, text: str, final_status: str
) -> None:

    assert result == emulator.get("us", tid)
    assert emulator.is_deleted("us", tid)
    methods = [(r.method, r.status) for r in emulator.requests]
    assert methods[-1] == ("DELETE", 200)
    assert len(methods) >= 3  # queued, ..., terminal, then the DELETE
    assert set(methods[:-1]) == {("GET", 200)}
    assert f"Transcript {tid} is queued; waiting until it is completed or error" in text
    assert f"(region us, status {final_status})" in text


def test_without_waiting_an_in_progress_transcript_fails_with_the_api_error(
    emulator: AssemblyAIEmulator,
) -> None:
    tid = emulator.create_transcript("us", status="processing")

    with pytest.raises(AssemblyAIError, match="still processing") as caught:
        make(transcript_id=tid, wait_for_completion=False).execute(CONTEXT)

    assert type(caught.value) is AssemblyAIError
    assert caught.value.status_code == 400
    assert [(r.method, r.status) for r in emulator.requests] == [("DELETE", 400)]
    assert not emulator.is_deleted("us", tid)


# -- deferral --------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["queued", "processing"])
def test_deferrable_defers_to_the_status_trigger(api: respx.MockRouter, status: str) -> None:
    api.get(URL).respond(200, json=transcript(status))
    delete = api.delete(URL).respond(200, json=deleted())
    operator = make(deferrable=True, poll_interval=2.5, execution_timeout=timedelta(minutes=10))

    before = time.time()
    with pytest.raises(TaskDeferred) as caught:
        operator.execute(CONTEXT)
    after = time.time()

    deferral = caught.value
    assert isinstance(deferral.trigger, TranscriptStatusTrigger)
    assert deferral.method_name == "execute_complete"
    classpath, kwargs = deferral.trigger.serialize()
    assert classpath == "airflow_provider_assemblyai.triggers.assemblyai.TranscriptStatusTrigger"
    end_time = kwargs.pop("end_time")
    assert kwargs == {
        "transcript_id": TID,
        "assemblyai_conn_id": "assemblyai_default",
        "target_statuses": ["completed", "error"],
        "failure_statuses": [],
        "poll_interval": 2.5,
    }
    assert before + 600 <= end_time <= after + 600
    assert before <= deferral.kwargs["started_at"] <= after
    assert TEST_API_KEY not in repr(deferral.trigger.serialize()) + repr(deferral.trigger) + str(deferral)
    assert delete.call_count == 0


def test_deferrable_without_execution_timeout_waits_without_deadline(api: respx.MockRouter) -> None:
    api.get(URL).respond(200, json=transcript("queued"))

    with pytest.raises(TaskDeferred) as caught:
        make(deferrable=True, assemblyai_conn_id="assemblyai_default").execute(CONTEXT)

    assert caught.value.trigger.serialize()[1]["end_time"] is None


def test_deferrable_deletes_at_once_when_already_terminal(api: respx.MockRouter) -> None:
    api.get(URL).respond(200, json=transcript("error", error="Download error"))
    delete = api.delete(URL).respond(200, json=deleted())

    assert make(deferrable=True).execute(CONTEXT) == deleted()
    assert delete.call_count == 1


def event(status: str, transcript_status: str | None, message: str = "done") -> dict[str, Any]:
    return {
        "status": status,
        "transcript_id": TID,
        "transcript_status": transcript_status,
        "message": message,
    }


def test_execute_complete_deletes_on_success(api: respx.MockRouter, logs: Callable[[], str]) -> None:
    delete = api.delete(URL).respond(200, json=deleted())

    result = make(deferrable=True).execute_complete(
        CONTEXT, event("success", "error"), started_at=time.time() - 90
    )

    assert result == deleted()
    assert delete.call_count == 1
    assert re.search(rf"Deleted transcript {TID} \(region us, status error\) in 9\d\.\d\ds", logs())


def test_execute_complete_applies_missing_ok(api: respx.MockRouter) -> None:
    api.delete(URL).respond(400, json=LOOKUP_ERROR)

    assert make(missing_ok=True).execute_complete(CONTEXT, event("success", "completed")) is None
    with pytest.raises(TranscriptNotFoundError):
        make().execute_complete(CONTEXT, event("success", "completed"))


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (
            event("timeout", "processing", "deadline passed"),
            "still processing when the task's execution_timeout",
        ),
        (
            event("error", None, "Could not poll: AssemblyAIAuthError"),
            "ended with 'error'.*AssemblyAIAuthError",
        ),
        (event("failure", "error", "ended with status 'error'"), "ended with 'failure'"),
        (event("surprise", None), "ended with 'surprise'"),
        ("not a dict", "unexpected trigger event"),
    ],
    ids=["timeout", "error", "failure", "unknown-status", "not-a-dict"],
)
def test_execute_complete_raises_on_anything_but_success(
    api: respx.MockRouter, payload: Any, match: str
) -> None:
    with pytest.raises(AssemblyAIError, match=match) as caught:
        make().execute_complete(CONTEXT, payload)

    assert "was not deleted" in str(caught.value) or "unexpected" in str(caught.value)
    assert len(api.calls) == 0


# -- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "transcript_id is None: there is no transcript id"),
        ("", "transcript_id is empty (''): there is no transcript id"),
        ("None", "transcript_id is 'None': there is no transcript id, most likely because an upstream"),
        (" null\n", "transcript_id is ' null\\n': there is no transcript id"),
        ("None/../x", "'None/../x'"),
        ("abc def", "'abc def'"),
        ("a" * 129, "129 characters"),
        ("\uff41bc", "'\uff41bc'"),  # a look-alike unicode letter
        (["a", "b"], "list ['a', 'b']"),
        ({"id": "x"}, "dict {'id': 'x'}"),
        (123, "int 123"),
    ],
)
def test_bad_transcript_id_fails_before_any_request(api: respx.MockRouter, value: Any, shown: str) -> None:
    for deferrable in (False, True):
        with pytest.raises(ValueError, match="transcript_id") as caught:
            make(transcript_id=value, deferrable=deferrable).execute(CONTEXT)
        assert shown in str(caught.value)
        with pytest.raises(ValueError, match="transcript_id"):
            make(transcript_id=value).execute_complete(CONTEXT, event("success", "completed"))
    assert len(api.calls) == 0


@pytest.mark.parametrize(
    ("template", "shown"), [("{{ [1, 2] }}", "list [1, 2]"), ("{{ {'a': 1} }}", "dict {'a': 1}")]
)
def test_template_rendering_to_a_list_or_dict_fails_before_any_request(
    api: respx.MockRouter, template: str, shown: str
) -> None:
    with DAG(
        "native", schedule=None, start_date=datetime(2025, 1, 1), render_template_as_native_obj=True
    ) as dag:
        operator = make(transcript_id=template)
    operator.render_template_fields({"params": {}}, jinja_env=dag.get_template_env())

    with pytest.raises(ValueError, match="transcript_id must be a string") as caught:
        operator.execute(CONTEXT)
    assert shown in str(caught.value)
    assert len(api.calls) == 0


@pytest.mark.parametrize("conn_id", ["", "   ", None])
def test_bad_connection_id_fails_before_any_request(api: respx.MockRouter, conn_id: Any) -> None:
    with pytest.raises(ValueError, match="assemblyai_conn_id"):
        make(assemblyai_conn_id=conn_id).execute(CONTEXT)
    assert len(api.calls) == 0


@pytest.mark.parametrize("value", [0, -1, 0.0, math.nan, math.inf, True, "5", None])
def test_bad_poll_interval_fails_in_the_constructor(value: Any) -> None:
    with pytest.raises(
        ValueError, match=re.escape(f"poll_interval must be a positive number of seconds, got {value!r}")
    ):
        make(poll_interval=value)


# -- templating ------------------------------------------------------------------------------------


def test_template_fields() -> None:
    assert DeleteTranscriptOperator.template_fields == ("transcript_id", "assemblyai_conn_id")


def test_renders_id_and_connection_from_params() -> None:
    operator = make(transcript_id="{{ params.tid }}", assemblyai_conn_id="{{ params.conn }}")

    operator.render_template_fields({"params": {"tid": TID, "conn": "assemblyai_eu"}})

    assert (operator.transcript_id, operator.assemblyai_conn_id) == (TID, "assemblyai_eu")
    assert operator.hook.assemblyai_conn_id == "assemblyai_eu"


def duration(text: str) -> str:
    match = re.search(r"Deleted transcript .* in (\d+\.\d\d)s", text)
    assert match, text
    return match.group(1)


# -- logging ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("region", ["us", "eu"])
def test_logs_one_line_with_id_region_status_duration_and_never_the_key(
    emulator: AssemblyAIEmulator, set_connection: Callable[..., None], logs: Callable[[], str], region: str
) -> None:
    set_connection(base_url=emulator.base_url(region), region=region)
    tid = emulator.create_transcript(region, status="error")
    operator = make(transcript_id=tid)

    result = operator.execute(CONTEXT)

    text = logs()
    # One line says it all (Airflow 2 may show it twice: through caplog and on the console).
    found = set(re.findall(r"Deleted transcript \S+ \(region \w+, status \w+\) in \d+\.\d\ds", text))
    assert found == {f"Deleted transcript {tid} (region {region}, status error) in {duration(text)}s"}
    assert TEST_API_KEY not in text
    assert TEST_API_KEY not in json.dumps(result) + repr(operator) + repr(operator.hook)
    assert [(r.method, r.region) for r in emulator.requests] == [("GET", region), ("DELETE", region)]


# -- dag.test(): templating from params and XCom, mapping, deferral --------------------------------

DAG_ID = "test_delete_transcript_operator"
DAG_FILE = f'''
from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.common.compat.sdk import DAG, get_current_context, task

from airflow_provider_assemblyai.operators.assemblyai import DeleteTranscriptOperator

with DAG("{DAG_ID}", schedule=None, start_date=datetime(2025, 1, 1), catchup=False) as dag:

    @task
    def transcribe() -> str:
        return get_current_context()["params"]["from_xcom"]

    @task
    def list_ids() -> list[str]:
        return get_current_context()["params"]["mapped"]

    DeleteTranscriptOperator(task_id="from_params", transcript_id="{{{{ params.from_params }}}}")
    transcribe() >> DeleteTranscriptOperator(
        task_id="from_xcom", transcript_id="{{{{ ti.xcom_pull('transcribe') }}}}"
    )
    DeleteTranscriptOperator.partial(task_id="mapped").expand(transcript_id=list_ids())
    DeleteTranscriptOperator(
        task_id="deferred",
        transcript_id="{{{{ params.in_progress }}}}",
        deferrable=True,
        poll_interval=0.2,
        execution_timeout=timedelta(minutes=5),
    )
'''


@pytest.fixture(scope="module")
def dag_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Any, AssemblyAIEmulator, dict[str, Any]]]:
    """One dag.test() run of DAG_FILE against an emulator with a manual clock."""
    folder: Path = tmp_path_factory.mktemp("dags")
    (folder / "delete_transcript_dag.py").write_text(DAG_FILE, encoding="utf-8")
    with (
        AssemblyAIEmulator(api_keys=(TEST_API_KEY,), clock=ManualClock()) as emu,
        pytest.MonkeyPatch.context() as mp,
    ):
        ids = {
            "from_params": emu.create_transcript("us"),
            "from_xcom": emu.create_transcript("us"),
            "mapped": [emu.create_transcript("us", status=s) for s in ("completed", "error", "completed")],
            "in_progress": emu.create_transcript("us", status="queued", completes_in=30),
        }
        mp.setenv(
            "AIRFLOW_CONN_ASSEMBLYAI_DEFAULT",
            json.dumps(
                {
                    "conn_type": "assemblyai",
                    "password": TEST_API_KEY,
                    "extra": {"base_url": emu.base_url("us")},
                }
            ),
        )
        # The deferred task GETs once in execute, then the trigger polls: complete it after that.
        stop = threading.Event()
        watcher = threading.Thread(target=complete_after_polls, args=(emu, ids["in_progress"], 2, stop))
        watcher.start()
        try:
            run = run_dag(mp, folder, DAG_ID, ids)
        finally:
            stop.set()
            watcher.join()
        yield run, emu, ids


def test_dag_run_succeeds(dag_run: tuple[Any, AssemblyAIEmulator, dict[str, Any]]) -> None:
    run, emu, ids = dag_run
    assert task_states(run) == {
        ("transcribe", -1): "success",
        ("list_ids", -1): "success",
        ("from_params", -1): "success",
        ("from_xcom", -1): "success",
        ("mapped", 0): "success",
        ("mapped", 1): "success",
        ("mapped", 2): "success",
        ("deferred", -1): "success",
    }
    all_ids = [ids["from_params"], ids["from_xcom"], *ids["mapped"], ids["in_progress"]]
    deletes = [r.path.rsplit("/", 1)[1] for r in emu.requests if r.method == "DELETE"]
    assert sorted(deletes) == sorted(all_ids)  # exactly one DELETE each
    assert all(emu.is_deleted("us", tid) for tid in all_ids)


@pytest.mark.parametrize("task_id", ["from_params", "from_xcom"])
def test_dag_run_renders_the_id(
    dag_run: tuple[Any, AssemblyAIEmulator, dict[str, Any]], task_id: str
) -> None:
    run, emu, ids = dag_run
    pushed = xcom(run, task_id)
    assert pushed["id"] == ids[task_id]
    assert pushed == emu.get("us", ids[task_id])
    assert pushed["text"] == "Deleted by user."


def test_dag_run_maps_over_three_ids(dag_run: tuple[Any, AssemblyAIEmulator, dict[str, Any]]) -> None:
    run, emu, ids = dag_run
    for index, tid in enumerate(ids["mapped"]):
        assert xcom(run, "mapped", index) == emu.get("us", tid)


def test_dag_run_deferred_through_the_trigger(
    dag_run: tuple[Any, AssemblyAIEmulator, dict[str, Any]],
) -> None:
    run, emu, ids = dag_run
    tid = ids["in_progress"]
    assert xcom(run, "deferred") == emu.get("us", tid)
    served = [(r.method, r.status) for r in emu.requests if r.path.endswith(tid)]
    assert served[-1] == ("DELETE", 200)
    assert len(served) >= 3  # execute's GET, the trigger's polls, then the DELETE
