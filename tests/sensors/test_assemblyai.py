"""TranscriptSensor: poke, deferral and resume against the emulator over real HTTP (sync hook)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    PokeReturnValue,
    TaskDeferred,
)

from airflow_provider_assemblyai.exceptions import AssemblyAIError, AssemblyAIServerError
from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook
from airflow_provider_assemblyai.sensors.assemblyai import (
    DEFERRAL_GRACE_SECONDS,
    TranscriptFailedError,
    TranscriptSensor,
)
from airflow_provider_assemblyai.testing import AssemblyAIEmulator, ManualClock
from airflow_provider_assemblyai.triggers.assemblyai import TranscriptStatusTrigger, utc_iso
from tests.conftest import TEST_API_KEY, provider_modules_loaded_by, status_event

API_ERROR = "Download error, unable to download https://example.com/missing.mp3"


@pytest.fixture
def emulator(set_connection: Callable[..., None]) -> Iterator[AssemblyAIEmulator]:
    """An emulator accepting ``TEST_API_KEY`` behind ``assemblyai_default`` (US, hook retries off)."""
    with AssemblyAIEmulator(api_keys=(TEST_API_KEY,)) as emu:
        set_connection(password=TEST_API_KEY, region="us", base_url=emu.base_url("us"), max_retries=0)
        yield emu


def sensor(transcript_id: str = "abc-123", **kwargs: Any) -> TranscriptSensor:
    kwargs.setdefault("poke_interval", 0.1)
    kwargs.setdefault("timeout", 30)
    return TranscriptSensor(task_id="wait", transcript_id=transcript_id, **kwargs)


# -- arguments --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"target_statuses": ("done",)}, "target_statuses has unknown status 'done'"),
        ({"target_statuses": []}, "target_statuses must be a non-empty list"),
        ({"failure_statuses": ("failed",)}, "failure_statuses has unknown status 'failed'"),
        ({"failure_statuses": ("completed",)}, r"must not overlap; both contain \['completed'\]"),
        ({"poke_interval": 0}, "poke_interval must be a positive number of seconds or a timedelta, got 0"),
        ({"poke_interval": -5}, "got -5"),
        ({"poke_interval": timedelta(0)}, r"got datetime.timedelta\(0\)"),
        ({"timeout": 0}, "timeout must be a positive number of seconds or a timedelta, got 0"),
        ({"timeout": -1.0}, "got -1.0"),
        ({"timeout": "1h"}, "got '1h'"),
        ({"transcript_id": "../v2/transcript"}, "not a valid transcript id"),
        ({"transcript_id": ""}, "transcript_id is empty"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_value(kwargs: dict[str, Any], match: str) -> None:
    arguments: dict[str, Any] = {"task_id": "wait", "transcript_id": "abc", **kwargs}
    with pytest.raises(ValueError, match=match):
        TranscriptSensor(**arguments)


def test_defaults_and_templated_fields() -> None:
    task = TranscriptSensor(task_id="wait", transcript_id="{{ params.transcript_id }}")
    assert TranscriptSensor.template_fields == ("transcript_id", "assemblyai_conn_id")
    assert task.assemblyai_conn_id == "assemblyai_default"
    assert (task.target_statuses, task.failure_statuses) == (["completed"], ["error"])
    assert task.deferrable is False
    assert TranscriptSensor(task_id="t", transcript_id="a", target_statuses="error", failure_statuses=[])


def test_a_bad_rendered_id_is_refused_before_any_request(emulator: AssemblyAIEmulator) -> None:
    task = sensor("{{ params.transcript_id }}")
    task.transcript_id = "../../v2/transcript"  # what a bad param renders to
    with pytest.raises(ValueError, match=r"'../../v2/transcript' is not a valid transcript id"):
        task.poke({})
    with pytest.raises(ValueError, match="not a valid transcript id"):
        sensor("{{ x }}", deferrable=True).execute({})  # an unrendered template is no id either
    assert emulator.requests == []


# -- poke -------------------------------------------------------------------------------------------


def test_poke_is_false_while_in_progress(emulator: AssemblyAIEmulator) -> None:
    queued = emulator.create_transcript("us", status="queued")
    processing = emulator.create_transcript("us", status="processing")
    assert sensor(queued).poke({}) is False
    assert sensor(processing).poke({}) is False
    assert len(emulator.requests_for(method="GET")) == 2


def test_poke_returns_the_summary_once_completed(emulator: AssemblyAIEmulator) -> None:
    tid = emulator.create_transcript("us", status="completed", audio_duration=321)
    result = sensor(tid).poke({})
    assert isinstance(result, PokeReturnValue)
    assert result.is_done
    assert result.xcom_value == {
        "transcript_id": tid,
        "status": "completed",
        "audio_duration": 321,
        "error": None,
    }
    assert TEST_API_KEY not in json.dumps(result.xcom_value)


def test_poke_fails_on_a_failure_status_with_the_api_error(emulator: AssemblyAIEmulator) -> None:
    tid = emulator.create_transcript("us", status="error", error=API_ERROR)
    with pytest.raises(TranscriptFailedError) as caught:
        sensor(tid).poke({})
    assert str(caught.value) == f"Transcript {tid} ended with status 'error': {API_ERROR}"
    assert caught.value.api_error == API_ERROR
    assert isinstance(caught.value, AssemblyAIError)
    assert isinstance(caught.value, AirflowFailException)  # no retries: the transcript will not heal


def test_custom_statuses(emulator: AssemblyAIEmulator) -> None:
    tid = emulator.create_transcript("us", status="error", error=API_ERROR)
    result = sensor(tid, target_statuses=["completed", "error"], failure_statuses=[]).poke({})
    assert isinstance(result, PokeReturnValue)
    assert result.xcom_value == {
        "transcript_id": tid,
        "status": "error",
        "audio_duration": None,
        "error": API_ERROR,
    }


def test_poke_treats_transient_errors_as_not_yet(emulator: AssemblyAIEmulator) -> None:
    tid = emulator.create_transcript("us", status="completed")
    emulator.fail_next("empty", path=f"/v2/transcript/{tid}", status=503)
    task = sensor(tid)
    assert task.poke({}) is False
    assert isinstance(task.poke({}), PokeReturnValue)


def test_poke_raises_non_transient_errors(emulator: AssemblyAIEmulator) -> None:
    with pytest.raises(AssemblyAIError, match="transcript id not found"):
        sensor("does-not-exist").poke({})


def test_poke_mode_execute_waits_until_completed(emulator: AssemblyAIEmulator) -> None:
    tid = emulator.create_transcript("us", status="processing", completes_in=0.5, audio_duration=12)
    result = sensor(tid, poke_interval=0.1).execute({})
    assert result == {"transcript_id": tid, "status": "completed", "audio_duration": 12, "error": None}
    assert len(emulator.requests_for(method="GET")) >= 2


@pytest.mark.parametrize("soft_fail", [False, True])
def test_poke_mode_timeout(emulator: AssemblyAIEmulator, soft_fail: bool) -> None:
    tid = emulator.create_transcript("us", status="processing")
    task = sensor(tid, poke_interval=0.1, timeout=0.4, soft_fail=soft_fail)
    with pytest.raises(AirflowSkipException if soft_fail else AirflowSensorTimeout, match="timed out"):
        task.execute({})


# -- deferrable: execute ----------------------------------------------------------------------------


def test_deferrable_defers_with_an_absolute_deadline(emulator: AssemblyAIEmulator) -> None:
    tid = emulator.create_transcript("us", status="processing")
    task = sensor(
        tid,
        deferrable=True,
        poke_interval=7,
        timeout=timedelta(hours=2),
        target_statuses=["completed"],
        failure_statuses=["error"],
    )
    before = time.time()
    with pytest.raises(TaskDeferred) as caught:
        task.execute({})
    after = time.time()
    deferred = caught.value
    assert deferred.method_name == "execute_complete"
    assert isinstance(deferred.trigger, TranscriptStatusTrigger)
    classpath, kwargs = deferred.trigger.serialize()
    assert classpath == "airflow_provider_assemblyai.triggers.assemblyai.TranscriptStatusTrigger"
    end_time = kwargs.pop("end_time")
    assert before + 7200 <= end_time <= after + 7200
    assert kwargs == {
        "transcript_id": tid,
        "assemblyai_conn_id": "assemblyai_default",
        "target_statuses": ["completed"],
        "failure_statuses": ["error"],
        "poll_interval": 7.0,
    }
    # The scheduler's own deferral timeout is only a backstop behind the trigger's deadline.
    assert deferred.timeout == timedelta(seconds=7200 + 7 + DEFERRAL_GRACE_SECONDS)
    assert TEST_API_KEY not in repr(deferred.trigger) + json.dumps(kwargs)
    assert len(emulator.requests_for(method="GET")) == 1  # poked once before deferring


def test_deferrable_returns_at_once_when_already_done(emulator: AssemblyAIEmulator) -> None:
    tid = emulator.create_transcript("us", status="completed", audio_duration=40)
    result = sensor(tid, deferrable=True).execute({})
    assert result == {"transcript_id": tid, "status": "completed", "audio_duration": 40, "error": None}


@pytest.mark.parametrize("soft_fail", [False, True])
def test_deferrable_fails_at_once_on_a_failure_status(emulator: AssemblyAIEmulator, soft_fail: bool) -> None:
    tid = emulator.create_transcript("us", status="error", error=API_ERROR)
    with pytest.raises(AirflowSkipException if soft_fail else TranscriptFailedError, match=API_ERROR):
        sensor(tid, deferrable=True, soft_fail=soft_fail).execute({})


def test_deferrable_defers_after_a_transient_error(emulator: AssemblyAIEmulator) -> None:
    tid = emulator.create_transcript("us", status="completed")
    emulator.fail_next("rate_limit", path=f"/v2/transcript/{tid}", retry_after=0)
    with pytest.raises(TaskDeferred):
        sensor(tid, deferrable=True).execute({})


# -- deferrable: execute_complete -------------------------------------------------------------------


@pytest.fixture
def clocked(set_connection: Callable[..., None]) -> Iterator[AssemblyAIEmulator]:
    """Like ``emulator``, on a manual clock: transcripts change status only when the test says so."""
    with AssemblyAIEmulator(api_keys=(TEST_API_KEY,), clock=ManualClock()) as emu:
        set_connection(password=TEST_API_KEY, region="us", base_url=emu.base_url("us"), max_retries=0)
        yield emu


def trigger_event(task: TranscriptSensor, emu: AssemblyAIEmulator, advance: float) -> dict[str, Any]:
    """Defer ``task``, advance the emulator's clock, and run the real trigger to its event."""
    with pytest.raises(TaskDeferred) as caught:
        task.execute({})
    trigger = caught.value.trigger
    assert isinstance(trigger, TranscriptStatusTrigger)
    emu.advance(advance)

    async def first() -> dict[str, Any]:
        try:
            async for fired in trigger.run():
                payload: dict[str, Any] = fired.payload
                return payload
            raise AssertionError("the trigger ended without an event")
        finally:
            await AssemblyAIHook.aclose_shared_clients()

    return asyncio.run(first())


def test_deferred_success_resumes_from_the_event_without_a_request(clocked: AssemblyAIEmulator) -> None:
    tid = clocked.create_transcript("us", status="processing", completes_in=60, audio_duration=99)
    task = sensor(tid, deferrable=True, poke_interval=0.05)
    payload = trigger_event(task, clocked, advance=60)
    requests = len(clocked.requests)
    result = task.execute_complete({}, payload)
    assert result == {"transcript_id": tid, "status": "completed", "audio_duration": 99, "error": None}
    assert len(clocked.requests) == requests  # no GET after the event: it carried everything


@pytest.mark.parametrize(
    ("failure_status", "advance", "api_error"),
    [
        ("error", 60, "Download error, unable to download 'https://example.com/a.mp3': HTTP 404 from 'cdn'"),
        ("processing", 30, None),  # a failure status without error text: no made-up api_error
    ],
)
def test_deferred_failure_keeps_the_api_error_field_verbatim(
    clocked: AssemblyAIEmulator, failure_status: str, advance: float, api_error: str | None
) -> None:
    tid = clocked.create_transcript(
        "us", status="queued", completes_in=60, final_status="error", error=api_error
    )  # processing after 30 s, error after 60 s
    task = sensor(tid, deferrable=True, poke_interval=0.05, failure_statuses=[failure_status])
    payload = trigger_event(task, clocked, advance)
    requests = len(clocked.requests)
    with pytest.raises(TranscriptFailedError) as caught:
        task.execute_complete({}, payload)
    assert caught.value.api_error == api_error
    assert str(caught.value).startswith(f"Transcript {tid} ended with status {failure_status!r}: ")
    assert len(clocked.requests) == requests


def test_deferral_logs_its_deadline_in_iso_8601_utc(
    emulator: AssemblyAIEmulator, logs: Callable[[], str]
) -> None:
    tid = emulator.create_transcript("us", status="processing")
    with pytest.raises(TaskDeferred) as caught:
        sensor(tid, deferrable=True, timeout=3600).execute({})
    end_time = caught.value.trigger.serialize()[1]["end_time"]
    text = logs()
    assert f"waiting in the triggerer for transcript {tid} until {utc_iso(end_time)}" in text
    assert re.search(r"until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", text)
    assert "Unix time" not in text


def test_execute_complete_success_returns_the_summary() -> None:
    result = sensor("abc").execute_complete(
        {}, status_event("success", "abc", "completed", "Transcript abc is completed", audio_duration=99)
    )
    assert result == {"transcript_id": "abc", "status": "completed", "audio_duration": 99, "error": None}


def test_execute_complete_failure_names_the_transcript_and_api_error() -> None:
    message = f"Transcript abc ended with status 'error': {API_ERROR}"
    with pytest.raises(TranscriptFailedError) as caught:
        sensor("abc").execute_complete({}, status_event("failure", "abc", "error", message, error=API_ERROR))
    assert str(caught.value) == message
    assert caught.value.api_error == API_ERROR


@pytest.mark.parametrize("soft_fail", [False, True])
def test_execute_complete_timeout(soft_fail: bool) -> None:
    message = "Transcript abc did not reach ['completed'] before the deadline"
    expected = AirflowSkipException if soft_fail else AirflowSensorTimeout
    with pytest.raises(expected, match="did not reach"):
        sensor("abc", soft_fail=soft_fail).execute_complete(
            {}, status_event("timeout", "abc", "processing", message)
        )


@pytest.mark.parametrize(
    "payload", [status_event("error", "abc", None, "TranscriptNotFoundError: not found"), None, {}]
)
def test_execute_complete_raises_on_anything_but_success(payload: dict[str, Any] | None) -> None:
    with pytest.raises(AssemblyAIError) as caught:
        sensor("abc").execute_complete({}, payload)
    assert not isinstance(caught.value, (TranscriptFailedError, AssemblyAIServerError))


def test_the_key_never_shows_in_reprs_or_results(emulator: AssemblyAIEmulator) -> None:
    tid = emulator.create_transcript("us", status="completed")
    task = sensor(tid)
    result = task.poke({})
    assert isinstance(result, PokeReturnValue)
    assert TEST_API_KEY not in repr(task) + repr(task.hook) + json.dumps(result.xcom_value)


def test_dag_parsing_imports_neither_the_hook_nor_the_trigger() -> None:
    """DAG files import the sensor and build it at every parse: httpx, tenacity and the trigger wait."""
    loaded = provider_modules_loaded_by(
        "from airflow_provider_assemblyai.sensors.assemblyai import TranscriptSensor\n"
        "TranscriptSensor(task_id='t', transcript_id='{{ params.id }}', deferrable=True)\n"
    )
    assert not [
        m
        for m in loaded
        if m.startswith(("airflow_provider_assemblyai.hooks", "airflow_provider_assemblyai.triggers"))
    ]
    assert "airflow_provider_assemblyai.sensors.assemblyai" in loaded
