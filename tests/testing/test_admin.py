"""The emulator's admin endpoint ``POST /_emulator/transcripts`` (what the CLI's ``seed`` calls)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from airflow_provider_assemblyai.testing import AssemblyAIEmulator
from airflow_provider_assemblyai.testing.app import ADMIN_PATH, build_app
from tests.testing.helpers import KEY, list_page


def admin_url(emu: AssemblyAIEmulator, region: str = "us") -> str:
    return emu.base_url(region) + ADMIN_PATH


def add(http: httpx.Client, emu: AssemblyAIEmulator, **body: Any) -> dict[str, Any]:
    response = http.post(admin_url(emu), json=body)
    assert response.status_code == 200, response.text
    added: dict[str, Any] = response.json()
    return added


def test_adds_old_eu_transcripts_for_a_purge_try_out(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    added = add(http, emu, region="eu", count=3, age_days=120, status="completed")

    assert added["region"] == "eu"
    assert added["ids"] == emu.ids("eu")  # newest first
    assert emu.ids("us") == []
    assert list_page(http, emu, "eu")["transcripts"] == []  # older than the API's 90-day list window
    emu.configure(list_retention_days=None)
    created = [datetime.fromisoformat(t["created"]) for t in list_page(http, emu, "eu")["transcripts"]]
    expected = emu.clock.now().replace(tzinfo=None) - timedelta(days=120)
    assert created == [expected - timedelta(seconds=i) for i in range(3)]
    assert all(emu.get("eu", tid)["status"] == "completed" for tid in added["ids"])


def test_in_progress_transcripts_finish_after_processing_seconds(
    emu: AssemblyAIEmulator, http: httpx.Client
) -> None:
    (processing,) = add(http, emu, status="processing", processing_seconds=30)["ids"]
    (queued,) = add(http, emu, status="queued", processing_seconds=30)["ids"]
    (stuck,) = add(http, emu, status="processing")["ids"]

    assert [emu.get("us", t)["status"] for t in (processing, queued, stuck)] == [
        "processing",
        "queued",
        "processing",
    ]
    emu.advance(31)
    assert [emu.get("us", t)["status"] for t in (processing, queued, stuck)] == [
        "completed",
        "completed",
        "processing",
    ]


def test_deleted_and_error_statuses_and_the_default_region(
    emu: AssemblyAIEmulator, http: httpx.Client
) -> None:
    deleted = add(http, emu, status="deleted", count=2)["ids"]
    response = http.post(admin_url(emu, "eu"), json={"status": "error"})  # region: the port's

    assert all(emu.is_deleted("us", tid) for tid in deleted)
    (errored,) = response.json()["ids"]
    assert response.json()["region"] == "eu"
    assert emu.get("eu", errored)["status"] == "error"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"count": 0}, "count must be a whole number from 1 to 10000, got 0"),
        ({"count": "5"}, "count must be a whole number from 1 to 10000, got '5'"),
        ({"region": "ap"}, "region must be one of ['us', 'eu'], got 'ap'"),
        (
            {"status": "done"},
            "status must be one of ['completed', 'deleted', 'error', 'processing', 'queued']",
        ),
        ({"age_days": -1}, "age_days must be a number >= 0, got -1"),
        ({"age_days": "old"}, "age_days must be a number >= 0, got 'old'"),
        ({"status": "completed", "processing_seconds": 5}, "processing_seconds only applies to queued or"),
        ({"status": "queued", "processing_seconds": 0}, "processing_seconds must be a number > 0, got 0"),
        ({"created": "2024-01-01"}, "unknown field(s) ['created']"),
        ([1, 2], "body must be a JSON object"),
    ],
)
def test_bad_requests_are_400_naming_the_field(
    emu: AssemblyAIEmulator, http: httpx.Client, body: Any, message: str
) -> None:
    response = http.post(admin_url(emu), json=body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert emu.ids("us") == emu.ids("eu") == []


def test_guarded_like_the_api_and_kept_out_of_its_log_and_limits(
    emu: AssemblyAIEmulator, http: httpx.Client
) -> None:
    emu.set_rate_limit(1, 300)
    assert httpx.post(admin_url(emu), json={}).status_code == 401  # no key
    assert httpx.post(admin_url(emu), json={}, headers={"Authorization": "wrong"}).status_code == 401
    assert http.get(admin_url(emu)).status_code == 405
    assert http.post(admin_url(emu), content=b"{not json").json() == {
        "error": "Request body must be valid JSON"
    }
    for _ in range(3):
        add(http, emu)  # not rate limited

    assert emu.requests == []  # admin calls are not API calls
    assert len(emu.ids("us")) == 3
    assert http.get(f"{emu.base_url('us')}/v2/transcript").status_code == 200  # the token is still there


async def test_only_loopback_clients_are_answered(emu: AssemblyAIEmulator) -> None:
    app = build_app(emu.state, "us", emu.base_url("us"))

    refused = await _post_from("192.0.2.7", app)

    assert refused.status_code == 403
    assert refused.json() == {"error": "the emulator's admin endpoint only answers loopback clients"}
    assert [(await _post_from(host, app)).status_code for host in ("::1", "127.0.0.1")] == [200, 200]
    assert len(emu.ids("us")) == 2


async def _post_from(host: str, app: Any) -> httpx.Response:
    """POST to the admin endpoint through the ASGI app, as a client at ``host``."""
    transport = httpx.ASGITransport(app=app, client=(host, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as http:
        return await http.post(ADMIN_PATH, json={}, headers={"Authorization": KEY})
