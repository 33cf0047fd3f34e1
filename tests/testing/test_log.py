"""The request log and counters."""

from __future__ import annotations

from dataclasses import asdict

import httpx

from airflow_provider_assemblyai.testing import AssemblyAIEmulator
from tests.testing.helpers import KEY, tr_url


def test_request_log_records_each_request(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    tid = emu.create_transcript("eu")
    http.get(tr_url(emu, "us"), params={"limit": 5, "status": "completed"})
    http.delete(tr_url(emu, "eu", tid))
    httpx.get(tr_url(emu, "us", tid), headers={"Authorization": "nope"})
    emu.fail_next("error", status=502)
    http.get(emu.base_url("eu") + "/elsewhere")

    listing, delete, unauthorized, faulted = emu.requests
    assert (listing.region, listing.method, listing.path) == ("us", "GET", "/v2/transcript")
    assert listing.query == "limit=5&status=completed"
    assert (listing.status, listing.key_matched, listing.fault) == (200, True, None)
    assert (delete.region, delete.method, delete.path, delete.status) == (
        "eu",
        "DELETE",
        f"/v2/transcript/{tid}",
        200,
    )
    assert (unauthorized.status, unauthorized.key_matched) == (401, False)
    assert (faulted.status, faulted.fault, faulted.path) == (502, "error", "/elsewhere")
    assert all(r.time.tzinfo is not None and r.elapsed_ms >= 0 for r in emu.requests)


def test_the_key_is_never_logged(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    http.get(tr_url(emu))
    httpx.get(tr_url(emu), headers={"Authorization": KEY + "-wrong"})
    dumped = repr(emu.requests) + repr([asdict(r) for r in emu.requests]) + repr(emu.counters)
    assert KEY not in dumped


def test_requests_for_filters(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    ids = emu.seed(3, statuses=["completed"])
    eu_id = emu.create_transcript("eu")
    for tid in ids:
        http.delete(tr_url(emu, "us", tid))
    http.delete(tr_url(emu, "eu", eu_id))
    http.get(tr_url(emu, "eu"))
    assert len(emu.requests_for(method="delete")) == 4
    assert len(emu.requests_for(method="DELETE", region="eu")) == 1
    assert len(emu.requests_for(region="eu")) == 2
    assert len(emu.requests_for(path=f"/v2/transcript/{ids[0]}")) == 1
    assert len(emu.requests_for(status=200)) == 5
    assert emu.requests_for(fault="error") == []


def test_counters_and_reset(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    tid = emu.create_transcript("us")
    http.post(tr_url(emu), json={"audio_url": "https://x/a.mp3"})
    http.delete(tr_url(emu, "us", tid))
    http.delete(tr_url(emu, "us", tid))
    httpx.get(tr_url(emu))
    emu.fail_next("empty")
    http.get(tr_url(emu))
    counters = emu.counters
    assert counters["requests"] == 5
    assert counters["created"] == 1
    assert counters["deleted"] == 1
    assert counters["status_200"] == 3
    assert counters["status_401"] == 1
    assert counters["status_503"] == 1
    assert counters["unauthorized"] == 1
    assert counters["faults"] == 1
    emu.fail_next("error")
    emu.configure(latency_ms=5)
    emu.reset()
    assert emu.requests == []
    assert emu.counters == {}
    assert emu.faults == []
    assert emu.ids("us") == []
    assert emu.state.config.latency_ms == 0
    assert http.get(tr_url(emu)).status_code == 200


def test_an_answer_without_a_body_is_logged_before_the_client_has_it(
    emu: AssemblyAIEmulator, http: httpx.Client
) -> None:
    """An empty body is complete with the headers: the log entry must already be there."""
    for done in range(1, 201):
        emu.fail_next("empty")
        http.get(tr_url(emu))
        assert len(emu.requests) == done
