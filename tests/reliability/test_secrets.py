"""
The API key never leaks: not into logs, XCom, rendered fields, trigger rows, exceptions, reprs or the
purge audit; it is registered with Airflow's secrets masker; and it is only ever sent to the
connection's own base URL (no foreign pagination links, no redirects, no plain http off loopback).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from airflow import __version__ as airflow_version
from airflow.providers.common.compat.sdk import redact
from airflow.triggers.base import TriggerEvent

from airflow_provider_assemblyai.audit import read_audit
from airflow_provider_assemblyai.exceptions import (
    AssemblyAIAuthError,
    AssemblyAIConfigError,
    AssemblyAIError,
)
from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook
from airflow_provider_assemblyai.operators.assemblyai import (
    DeleteTranscriptOperator,
    PurgeTranscriptsOperator,
)
from airflow_provider_assemblyai.sensors.assemblyai import TranscriptSensor
from airflow_provider_assemblyai.testing import AssemblyAIEmulator, ManualClock
from airflow_provider_assemblyai.triggers.assemblyai import TranscriptStatusTrigger
from tests.api_bodies import EU, US, deleted_body, list_page, transcript_body
from tests.example_dags.dag_runner import dag_bag, run_dag, task_states
from tests.reliability.helpers import (
    CANARY_KEY,
    dag_folder,
    log_files,
    metadata_rows,
    trigger_rows,
    where,
    without_airflows_mask_secret_lines,
)

#: Airflow 3.0.x prints every masked secret in dag.test()'s debug MaskSecret lines, at any log level.
AIRFLOW_PRINTS_MASK_SECRET_LINES = airflow_version.startswith("3.0.")
WRONG_KEY = CANARY_KEY + "-revoked"  # contains the canary: a leak of either is caught by one search

CANARY_DAG = """
    from __future__ import annotations

    from datetime import datetime

    from airflow.providers.common.compat.sdk import DAG

    from airflow_provider_assemblyai.operators.assemblyai import (
        DeleteTranscriptOperator,
        PurgeTranscriptsOperator,
    )
    from airflow_provider_assemblyai.sensors.assemblyai import TranscriptSensor

    with DAG(
        dag_id="reliability_canary",
        schedule=None,
        start_date=datetime(2025, 1, 1),
        catchup=False,
        render_template_as_native_obj=True,
        params={"processing": [], "purge_ids": [], "completed": "", "audit": ""},
    ):
        sensor = TranscriptSensor(
            task_id="sensor_deferred",
            transcript_id="{{ params.processing[0] }}",
            deferrable=True,
            poke_interval=0.2,
            timeout=30,
        )
        sensor >> DeleteTranscriptOperator(
            task_id="delete_deferred",
            transcript_id="{{ params.processing[1] }}",
            deferrable=True,
            poll_interval=0.2,
        )
        PurgeTranscriptsOperator(
            task_id="purge", transcript_ids="{{ params.purge_ids }}", audit_path="{{ params.audit }}"
        )
        DeleteTranscriptOperator(
            task_id="delete_wrong_key",
            transcript_id="{{ params.completed }}",
            assemblyai_conn_id="assemblyai_wrong_key",
        )
        TranscriptSensor(
            task_id="sensor_wrong_key_deferred",
            transcript_id="{{ params.processing[0] }}",
            assemblyai_conn_id="assemblyai_wrong_key",
            deferrable=True,
            poke_interval=0.2,
            timeout=30,
        )
"""


def _conf_for(dag_id: str, emu: AssemblyAIEmulator, tmp_path: Path) -> dict[str, Any]:
    """The run conf of each DAG in the folder: an unknown DAG fails the test until it is added here."""
    if dag_id == "example_assemblyai_post_etl_cleanup":
        tid = emu.create_transcript("us", status="completed", options={"speaker_labels": True})
        return {"transcript_id": tid, "export_dir": str(tmp_path / "exports")}
    if dag_id == "example_assemblyai_mapped_delete":
        ids = [emu.create_transcript("us", status=status) for status in ("completed", "error")]
        return {"transcript_ids": [*ids, "0000-not-a-transcript"]}
    if dag_id == "example_assemblyai_retention_purge":
        old = datetime.now(timezone.utc) - timedelta(days=40)
        for status in ("completed", "error", "completed"):
            emu.create_transcript("us", status=status, created=old)
        return {"audit_dir": (tmp_path / "audit").as_uri()}
    if dag_id == "example_assemblyai_wait_export_delete":
        tid = emu.create_transcript("us", status="processing", completes_in=300)
        return {"transcript_id": tid, "export_dir": str(tmp_path / "exports")}
    if dag_id == "example_assemblyai_event_driven_cleanup":
        # Its transcripts come from asset events: dag.test() runs it with none (an empty mapping);
        # tests/e2e/test_event_driven_cleanup.py runs it for real and searches every log for the key.
        return {}
    if dag_id == "reliability_canary":
        return {
            # Each deferral moves the clock 600 s: the sensor's transcript completes, then the delete's.
            "processing": [
                emu.create_transcript("us", status="processing", completes_in=seconds)
                for seconds in (300, 900)
            ],
            "purge_ids": [emu.create_transcript("us", status="completed") for _ in range(5)],
            "completed": emu.create_transcript("us", status="completed"),
            "audit": (tmp_path / "audit" / "purge.jsonl").as_uri(),
        }
    raise AssertionError(f"{dag_id} is new: give it a run conf in test_secrets._conf_for")


def spy_on_triggers(monkeypatch: pytest.MonkeyPatch, emu: AssemblyAIEmulator) -> list[str]:
    """
    Record the ``serialize()`` output and repr of every TranscriptStatusTrigger that runs.

    When a trigger starts running, the emulator's manual clock jumps 600 s ahead, so the transcript
    the deferred task waits for completes while it is deferred.
    """
    seen: list[str] = []
    original = TranscriptStatusTrigger.run

    async def run(self: TranscriptStatusTrigger) -> AsyncIterator[TriggerEvent]:
        seen.append(f"{self.serialize()!r} {self!r} {self}")
        emu.advance(600)
        async for event in original(self):
            yield event

    monkeypatch.setattr(TranscriptStatusTrigger, "run", run)
    return seen


def test_example_dags_never_leak_the_key(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    # Airflow 2's unit-test config names the LocalExecutor, which refuses SQLite when a sensor runs.
    monkeypatch.setenv("_AIRFLOW__SKIP_DATABASE_EXECUTOR_COMPATIBILITY_CHECK", "1")
    folder = dag_folder(tmp_path, {"reliability_canary": CANARY_DAG}, examples=True)
    emulator = AssemblyAIEmulator(api_keys=(CANARY_KEY,), clock=ManualClock())
    with emulator as emu:
        trigger_spy = spy_on_triggers(monkeypatch, emu)
        monkeypatch.setenv("AIRFLOW_CONN_ASSEMBLYAI_DEFAULT", emu.connection_json("us", CANARY_KEY))
        monkeypatch.setenv("AIRFLOW_CONN_ASSEMBLYAI_WRONG_KEY", emu.connection_json("us", WRONG_KEY))
        dag_ids = sorted(dag_bag(folder).dag_ids)
        runs = {}
        for dag_id in dag_ids:
            runs[dag_id] = run_dag(monkeypatch, folder, dag_id, _conf_for(dag_id, emu, tmp_path))
        states = {dag_id: task_states(run) for dag_id, run in runs.items()}
        served = emu.requests

    # The runs did what they should, so the search below covers real work.
    assert set(states["example_assemblyai_post_etl_cleanup"].values()) == {"success"}
    assert set(states["example_assemblyai_mapped_delete"].values()) == {"success"}
    assert set(states["example_assemblyai_retention_purge"].values()) == {"success"}
    assert set(states["example_assemblyai_wait_export_delete"].values()) == {"success"}
    canary = states["reliability_canary"]
    assert canary[("sensor_deferred", -1)] == "success"
    assert canary[("delete_deferred", -1)] == "success"
    assert canary[("purge", -1)] == "success"
    assert canary[("delete_wrong_key", -1)] == "failed"
    assert canary[("sensor_wrong_key_deferred", -1)] == "failed"
    assert any(not r.key_matched for r in served)
    assert any(r.key_matched for r in served)
    assert len(trigger_spy) == 3  # the example's sensor and both of the canary DAG's deferrable tasks

    out, err = capfd.readouterr()
    if AIRFLOW_PRINTS_MASK_SECRET_LINES:  # upstream, Airflow 3.0.x: see test_secrets_cli.py
        out, err = (without_airflows_mask_secret_lines(text, CANARY_KEY) for text in (out, err))
    records = [f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records]
    audit = {str(p): p.read_text(encoding="utf-8") for p in (tmp_path / "audit").rglob("*.jsonl")}
    db = metadata_rows()
    haystacks: dict[str, Any] = {
        "stdout": out,
        "stderr": err,
        "log records": records,
        "trigger serialize()/repr": trigger_spy,
        "trigger rows (decrypted)": trigger_rows(),
        **{f"log file {name}": text for name, text in log_files().items()},
        **{f"audit {name}": text for name, text in audit.items()},
        **{f"table {name}": rows for name, rows in db.items()},
    }
    # Not vacuous: the logs, XCom, rendered fields and audit file that were searched hold the run.
    assert "Deleted transcript" in out + err + "\n".join(records)
    assert "Authentication error" in out + err + "\n".join(records)
    assert db["xcom"]
    assert db["rendered_task_instance_fields"]
    # One audit folder per purge (the retention example's <ds>/, the canary's purge/), all records kept.
    records = sorted(len(read_audit(folder.as_uri()).records) for folder in (tmp_path / "audit").iterdir())
    assert records == [3, 5]  # retention, canary purge
    assert audit
    assert where(CANARY_KEY, haystacks) == []


# -- the secrets masker ------------------------------------------------------------------------


def _fresh_key(label: str) -> str:
    """A key no other test registered with the (process-wide) masker yet."""
    return f"sk-fresh-{label}-{uuid.uuid4().hex}"


def test_sync_settings_register_the_key_with_the_masker(set_connection: Callable[..., None]) -> None:
    key = _fresh_key("sync")
    set_connection(password=key, region="eu")
    # Not registered as a whole yet, so the check below is meaningful. (Other tests of the process may
    # have registered short secrets that mask parts of it: Airflow 2.11 masks secrets of any length.)
    assert redact(key) != "***"

    assert AssemblyAIHook().settings.region == "eu"

    assert redact(key) == "***"
    assert key not in str(redact(f"key={key}"))
    assert key not in str(redact({"Authorization": key, "nested": [key]}))


async def test_async_settings_register_the_key_with_the_masker(set_connection: Callable[..., None]) -> None:
    key = _fresh_key("async")
    set_connection(password=key, region="eu")
    assert redact(key) != "***"  # not registered as a whole yet (see the sync test)

    settings = await AssemblyAIHook().aget_settings()

    assert settings.api_key == key
    assert redact(key) == "***"
    assert key not in str(redact(f"Authorization: {key}"))


# -- reprs, serialized trigger kwargs and exceptions ---------------------------------------------


def _texts(*objects: object) -> list[str]:
    return [text for obj in objects for text in (repr(obj), str(obj))]


def test_reprs_and_serialized_trigger_kwargs_never_show_the_key(
    set_connection: Callable[..., None],
) -> None:
    set_connection(password=CANARY_KEY, region="eu")
    hook = AssemblyAIHook()
    settings = hook.settings  # resolved: the key is now in memory
    assert settings.api_key == CANARY_KEY
    delete = DeleteTranscriptOperator(task_id="delete", transcript_id="abc")
    purge = PurgeTranscriptsOperator(task_id="purge", transcript_ids=["abc", "def"])
    sensor = TranscriptSensor(task_id="sense", transcript_id="abc", deferrable=True)
    for operator in (delete, purge, sensor):
        assert operator.hook.settings.api_key == CANARY_KEY  # cached on the operator, too
    trigger = TranscriptStatusTrigger(transcript_id="abc", end_time=2e9)
    _classpath, kwargs = trigger.serialize()

    texts = _texts(hook, settings, delete, purge, sensor, trigger, delete.hook, kwargs, hook.client)
    texts.append(json.dumps(kwargs))
    assert not [text for text in texts if CANARY_KEY in text]
    assert set(kwargs) == {
        "transcript_id",
        "assemblyai_conn_id",
        "target_statuses",
        "failure_statuses",
        "poll_interval",
        "end_time",
    }
    assert all(isinstance(value, (str, int, float, list, type(None))) for value in kwargs.values())


def _exception_texts(error: BaseException) -> list[str]:
    """str, repr, args and attributes of an exception and of everything it was raised from."""
    texts: list[str] = []
    seen: BaseException | None = error
    while seen is not None:
        texts += [str(seen), repr(seen), repr(seen.args), repr(vars(seen))]
        seen = seen.__cause__ or seen.__context__
    return texts


def test_bad_key_errors_never_contain_the_key(
    set_connection: Callable[..., None], assemblyai_emulator: AssemblyAIEmulator
) -> None:
    tid = assemblyai_emulator.create_transcript("us", status="completed")
    set_connection(password=CANARY_KEY, base_url=assemblyai_emulator.base_url("us"))
    hook = AssemblyAIHook()
    calls: list[Callable[[], object]] = [
        lambda: hook.get_transcript(tid),
        lambda: hook.delete_transcript(tid),
        lambda: list(hook.list_transcripts()),
    ]
    for call in calls:
        with pytest.raises(AssemblyAIAuthError) as info:
            call()
        assert info.value.status_code == 401
        assert not [text for text in _exception_texts(info.value) if CANARY_KEY in text]
    ok, message = hook.test_connection()
    assert not ok
    assert "401" in message
    assert CANARY_KEY not in message
    assert not assemblyai_emulator.is_deleted("us", tid)


async def test_bad_key_trigger_event_never_contains_the_key(
    set_connection: Callable[..., None], assemblyai_emulator: AssemblyAIEmulator, shared_clients: None
) -> None:
    tid = assemblyai_emulator.create_transcript("us", status="processing")
    set_connection(password=CANARY_KEY, base_url=assemblyai_emulator.base_url("us"))
    trigger = TranscriptStatusTrigger(transcript_id=tid, poll_interval=0.05, end_time=time.time() + 60)

    event = await asyncio.wait_for(trigger.run().__anext__(), timeout=30)

    assert event.payload["status"] == "error"
    assert "401" in event.payload["message"]
    assert CANARY_KEY not in json.dumps(event.payload) + repr(event) + repr(trigger)


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_an_error_body_echoing_the_key_is_masked(
    api: respx.MockRouter, method: str, set_connection: Callable[..., None]
) -> None:
    """Some gateways echo the rejected header back; the error text must not carry it further."""
    set_connection(password=CANARY_KEY)
    api.route(method=method, url=f"{US}/v2/transcript/abc").respond(
        401, json={"error": f"Invalid API key {CANARY_KEY}"}
    )
    hook = AssemblyAIHook()
    call = hook.get_transcript if method == "GET" else hook.delete_transcript
    with pytest.raises(AssemblyAIAuthError) as info:
        call("abc")
    assert not [text for text in _exception_texts(info.value) if CANARY_KEY in text]


# -- the key goes only to the connection's own base URL ------------------------------------------

FOREIGN_LINKS = [
    "https://evil.example.com/v2/transcript?limit=2&before_id=b",
    "http://api.assemblyai.com/v2/transcript?limit=2&before_id=b",  # scheme downgrade
    "https://api.assemblyai.com:8443/v2/transcript?limit=2&before_id=b",  # other port
    "https://api.assemblyai.com.evil.example.com/v2/transcript?limit=2&before_id=b",
    "https://api.assemblyai.com@evil.example.com/v2/transcript?limit=2&before_id=b",  # userinfo trick
    "https://api.eu.assemblyai.com/v2/transcript?limit=2&before_id=b",  # the other region
]


def _foreign_route(api: respx.MockRouter, link: str) -> respx.Route:
    parts = httpx.URL(link)
    return api.route(host=parts.host, port=parts.port, scheme=parts.scheme).respond(
        200, json=list_page(["c"], None)
    )


def _own_pages(api: respx.MockRouter, link: str) -> respx.Route:
    """The connection's host: page 1 links to ``link``, page 2 (``before_id=b``) is the last."""
    pages = {None: list_page(["a", "b"], link), "b": list_page(["c"], None)}
    return api.get(f"{US}/v2/transcript").mock(
        side_effect=lambda request: httpx.Response(200, json=pages[request.url.params.get("before_id")])
    )


@pytest.mark.parametrize("link", FOREIGN_LINKS)
def test_a_foreign_pagination_link_is_never_requested(
    api: respx.MockRouter, link: str, set_connection: Callable[..., None]
) -> None:
    """Page 2 is read from the connection's base URL with before_id; the API's link goes unused."""
    set_connection(password=CANARY_KEY)
    foreign = _foreign_route(api, link)
    own = _own_pages(api, link)

    assert [item.id for item in AssemblyAIHook().list_transcripts()] == ["a", "b", "c"]

    assert own.call_count == 2
    assert not foreign.called
    sent = [
        (c.request.url.scheme, c.request.url.netloc, c.request.headers["authorization"]) for c in api.calls
    ]
    assert sent == [("https", b"api.assemblyai.com", CANARY_KEY)] * 2


@pytest.mark.parametrize("link", FOREIGN_LINKS[:3])
async def test_a_foreign_pagination_link_is_never_requested_async(
    api: respx.MockRouter, link: str, set_connection: Callable[..., None], shared_clients: None
) -> None:
    set_connection(password=CANARY_KEY)
    foreign = _foreign_route(api, link)
    own = _own_pages(api, link)

    assert [item.id async for item in AssemblyAIHook().alist_transcripts()] == ["a", "b", "c"]

    assert own.call_count == 2
    assert not foreign.called
    assert {c.request.url.host for c in api.calls} == {"api.assemblyai.com"}


@pytest.mark.parametrize("link", FOREIGN_LINKS)
def test_an_absolute_url_off_the_base_url_is_refused_before_sending(
    api: respx.MockRouter, link: str, set_connection: Callable[..., None]
) -> None:
    """The request core itself refuses an absolute URL on another host (defence in depth)."""
    set_connection(password=CANARY_KEY)
    anything = api.route().respond(200, json=list_page([], None))

    with pytest.raises(AssemblyAIError, match="Refusing to follow a link") as info:
        AssemblyAIHook()._request("GET", link)

    assert not anything.called
    assert CANARY_KEY not in str(info.value)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_not_followed(
    api: respx.MockRouter, status: int, set_connection: Callable[..., None]
) -> None:
    set_connection(password=CANARY_KEY)
    api.get(f"{US}/v2/transcript/abc").respond(status, headers={"Location": "https://evil.example.com/x"})
    api.delete(f"{US}/v2/transcript/abc").respond(status, headers={"Location": "https://evil.example.com/x"})
    elsewhere = api.route(host="evil.example.com").respond(200, json=deleted_body("abc"))
    hook = AssemblyAIHook()

    for call in (hook.get_transcript, hook.delete_transcript):
        with pytest.raises(AssemblyAIError, match="redirects are not followed") as info:
            call("abc")
        assert info.value.status_code == status
    assert not elsewhere.called
    assert {call.request.url.host for call in api.calls} == {"api.assemblyai.com"}


async def test_redirects_are_not_followed_async(
    api: respx.MockRouter, set_connection: Callable[..., None], shared_clients: None
) -> None:
    set_connection(password=CANARY_KEY)
    api.delete(f"{US}/v2/transcript/abc").respond(302, headers={"Location": "https://evil.example.com/x"})
    elsewhere = api.route(host="evil.example.com").respond(200, json=deleted_body("abc"))

    with pytest.raises(AssemblyAIError, match="redirects are not followed"):
        await AssemblyAIHook().adelete_transcript("abc")

    assert not elsewhere.called


@pytest.mark.parametrize(
    "base_url",
    ["http://api.assemblyai.com", "http://10.0.0.5:8080", "http://[2001:db8::1]", "http://proxy.internal"],
)
def test_plain_http_off_loopback_is_refused_before_any_request(
    api: respx.MockRouter, base_url: str, set_connection: Callable[..., None]
) -> None:
    set_connection(password=CANARY_KEY, base_url=base_url)
    anything = api.route().respond(200, json=transcript_body("abc"))

    with pytest.raises(AssemblyAIConfigError, match="plain http") as info:
        AssemblyAIHook().get_transcript("abc")

    assert base_url in str(info.value)
    assert CANARY_KEY not in str(info.value)
    assert not anything.called


def test_every_request_carries_the_key_to_the_base_url_only(
    api: respx.MockRouter, set_connection: Callable[..., None]
) -> None:
    set_connection(password=CANARY_KEY, region="eu")
    page2 = f"{EU}/v2/transcript?limit=200&before_id=b"
    api.get(page2).respond(200, json=list_page(["c"], None, base=EU))
    api.get(f"{EU}/v2/transcript", params={"limit": "200"}).respond(
        200, json=list_page(["a", "b"], page2, base=EU)
    )
    api.get(f"{EU}/v2/transcript/a").respond(200, json=transcript_body("a"))
    api.delete(f"{EU}/v2/transcript/a").respond(200, json=deleted_body("a"))
    hook = AssemblyAIHook()

    assert [item.id for item in hook.list_transcripts()] == ["a", "b", "c"]
    hook.get_transcript("a")
    hook.delete_transcript("a")

    sent = [(c.request.url.scheme, c.request.url.host, c.request.headers["authorization"]) for c in api.calls]
    assert sent == [("https", "api.eu.assemblyai.com", CANARY_KEY)] * 4  # two list pages, GET, DELETE
