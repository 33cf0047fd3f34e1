"""Fault injection: every kind, matching rules, probabilities, runtime changes."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from airflow_provider_assemblyai.testing import AssemblyAIEmulator, Fault
from tests.testing.conftest import Validate
from tests.testing.helpers import tr_url


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_error_with_json_body(
    emu: AssemblyAIEmulator, http: httpx.Client, status: int, validate: Validate
) -> None:
    tid = emu.create_transcript("us")
    emu.fail_next("error", status=status, method="DELETE")
    resp = http.delete(tr_url(emu, "us", tid))
    assert resp.status_code == status
    validate("Error", resp.json())
    assert not emu.is_deleted("us", tid)  # answered before the API saw it
    assert http.delete(tr_url(emu, "us", tid)).status_code == 200


@pytest.mark.parametrize("status", [503, 504, 500])
def test_empty_body(emu: AssemblyAIEmulator, http: httpx.Client, status: int) -> None:
    emu.fail_next("empty", status=status)
    resp = http.get(tr_url(emu))
    assert resp.status_code == status
    assert resp.content == b""


def test_html_502_proxy_page(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    emu.fail_next("html")
    resp = http.get(tr_url(emu))
    assert resp.status_code == 502
    assert resp.headers["content-type"].startswith("text/html")
    assert b"502 Bad Gateway" in resp.content
    with pytest.raises(json.JSONDecodeError):
        resp.json()


def test_rate_limit_fault_has_retry_after(
    emu: AssemblyAIEmulator, http: httpx.Client, validate: Validate
) -> None:
    emu.fail_next("rate_limit", retry_after=7)
    resp = http.get(tr_url(emu))
    assert resp.status_code == 429
    assert resp.headers["retry-after"] == "7"
    assert resp.json() == {"error": "Too Many Requests"}
    validate("Error", resp.json())
    assert emu.counters["faults"] == 1
    assert emu.rate_limited_count == 0


def test_non_json_200(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    emu.fail_next("non_json")
    resp = http.get(tr_url(emu))
    assert resp.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        resp.json()


def test_truncated_json_applies_the_effect(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    tid = emu.create_transcript("us")
    emu.fail_next("truncated_json", method="DELETE")
    resp = http.delete(tr_url(emu, "us", tid))
    assert resp.status_code == 200
    assert resp.content.startswith(b'{"id":')
    with pytest.raises(json.JSONDecodeError):
        resp.json()
    assert emu.is_deleted("us", tid)


def test_slow_response_times_out_the_client(emu: AssemblyAIEmulator) -> None:
    tid = emu.create_transcript("us")
    emu.fail_next("slow", delay=1.0, method="DELETE")
    with httpx.Client(headers={"Authorization": emu.api_keys[0]}, timeout=0.2) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.delete(tr_url(emu, "us", tid))
        assert emu.is_deleted("us", tid)
    with httpx.Client(headers={"Authorization": emu.api_keys[0]}, timeout=3) as client:
        emu.fail_next("slow", delay=0.3)
        resp = client.get(tr_url(emu, "us", tid))
        assert resp.status_code == 200
        assert resp.json()["id"] == tid


def test_drop_after_effect(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    tid = emu.create_transcript("us")
    emu.fail_next("drop_after_effect", method="DELETE", path="/v2/transcript/")
    with pytest.raises(httpx.RemoteProtocolError):
        http.delete(tr_url(emu, "us", tid))
    assert emu.is_deleted("us", tid)
    (record,) = emu.requests_for(method="DELETE")
    assert record.fault == "drop_after_effect"
    assert record.status == 200
    # the connection pool recovers; the retry sees the already-deleted transcript
    assert http.delete(tr_url(emu, "us", tid)).json()["text"] == "Deleted by user."


def test_drop_before_effect(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    tid = emu.create_transcript("us")
    emu.fail_next("drop", method="DELETE")
    with pytest.raises(httpx.RemoteProtocolError):
        http.delete(tr_url(emu, "us", tid))
    assert not emu.is_deleted("us", tid)
    assert emu.requests[-1].status is None


def test_rules_match_method_path_region_and_count(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    tid = emu.create_transcript("eu")
    emu.fail_next("error", times=2, method="DELETE", region="eu", path="/v2/transcript/")
    assert http.get(tr_url(emu, "eu", tid)).status_code == 200  # wrong method
    assert http.delete(tr_url(emu, "us", tid)).status_code == 400  # wrong region (lookup error)
    assert [http.delete(tr_url(emu, "eu", tid)).status_code for _ in range(3)] == [500, 500, 200]
    assert emu.faults == []


def test_rules_fire_in_order(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    emu.add_fault(Fault("empty", status=503))
    emu.add_fault(Fault("error", status=504, times=2))
    assert [http.get(tr_url(emu)).status_code for _ in range(4)] == [503, 504, 504, 200]
    assert [r.fault for r in emu.requests] == ["empty", "error", "error", None]


def test_probabilistic_faults_are_seeded(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    def run() -> list[int]:
        emu.reset()
        emu.fail_randomly("error", 0.5, status=503)
        return [http.get(tr_url(emu)).status_code for _ in range(30)]

    first = run()
    assert first == run()
    assert 5 < first.count(503) < 25
    emu.clear_faults()
    assert http.get(tr_url(emu)).status_code == 200


def test_faults_can_be_changed_while_requests_flow(emu: AssemblyAIEmulator) -> None:
    stop = threading.Event()
    codes: list[int] = []

    def hammer() -> None:
        with httpx.Client(headers={"Authorization": emu.api_keys[0]}, timeout=5) as client:
            while not stop.is_set():
                codes.append(client.get(tr_url(emu)).status_code)

    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        for _ in range(20):
            emu.fail_randomly("error", 1.0, status=500)
            emu.clear_faults()
            emu.fail_next("empty", times=1)
    finally:
        stop.set()
        worker.join(10)
    assert set(codes) <= {200, 500, 503}


def test_fault_validation() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="probability"):
        Fault("error", probability=2)
    with pytest.raises(ValueError, match="times"):
        Fault("error", times=0)
