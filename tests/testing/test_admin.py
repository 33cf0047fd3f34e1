"""The ``/_emulator/`` admin endpoints: seed, finish, list and read the request log from another process."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest

from airflow_provider_assemblyai.testing import AssemblyAIEmulator
from airflow_provider_assemblyai.testing.app import Sleeper, build_app
from tests.testing.helpers import list_page, tr_url


def admin(emu: AssemblyAIEmulator, region: str, path: str) -> str:
    return f"{emu.base_url(region)}/_emulator/{path}"


def test_create_transcripts_in_the_port_s_region(emu: AssemblyAIEmulator) -> None:
    created = (emu.clock.now() - timedelta(days=10)).replace(microsecond=0)
    response = httpx.post(
        admin(emu, "eu", "transcripts"),
        json=[
            {"status": "completed", "created": created.isoformat(), "count": 3},
            {"status": "processing"},
        ],
    )
    assert response.status_code == 200, response.text
    ids = response.json()["ids"]
    assert len(ids) == 4
    assert [emu.get("eu", tid)["status"] for tid in ids] == ["completed"] * 3 + ["processing"]
    assert emu.ids("us") == []
    listed = {item["id"]: item for item in emu.state.api_list("eu", {"limit": "10"}, "")["transcripts"]}
    assert {listed[tid]["created"] for tid in ids[:3]} == {f"{created:%Y-%m-%dT%H:%M:%S}.000000"}


def test_finish_makes_an_in_flight_transcript_end_later(emu: AssemblyAIEmulator) -> None:
    tid = emu.create_transcript("us", status="processing")
    response = httpx.post(admin(emu, "us", f"transcripts/{tid}/finish"), json={"in_seconds": 30})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "processing"
    emu.advance(29)
    assert emu.get("us", tid)["status"] == "processing"
    emu.advance(2)
    assert emu.get("us", tid)["status"] == "completed"
    failed = emu.create_transcript("us", status="queued")
    httpx.post(
        admin(emu, "us", f"transcripts/{failed}/finish"), json={"in_seconds": 0, "final_status": "error"}
    )
    assert emu.get("us", failed)["status"] == "error"


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("transcripts", {"status": "done"}, 400, "status must be one of"),
        ("transcripts", {"colour": "red"}, 400, "unknown field(s) ['colour']"),
        ("transcripts", {"count": 0}, 400, "count must be an integer >= 1, got 0"),
        ("transcripts", {"created": "yesterday"}, 400, "created must be an ISO 8601 datetime"),
        ("transcripts", [], 400, "expected a JSON object or a non-empty list"),
        ("transcripts/nope/finish", {"in_seconds": 1}, 404, "no transcript nope in us"),
        ("transcripts/{done}/finish", {"in_seconds": 1}, 400, "is already completed"),
        ("transcripts/{done}/finish", {"seconds": 1}, 400, 'expected {"in_seconds"'),
    ],
)
def test_bad_admin_requests_are_refused_with_a_reason(
    emu: AssemblyAIEmulator, path: str, body: object, status: int, message: str
) -> None:
    done = emu.create_transcript("us", status="completed")
    response = httpx.post(admin(emu, "us", path.format(done=done)), json=body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert emu.ids("us") == [done]


def test_list_ids_by_status_and_deletion(emu: AssemblyAIEmulator) -> None:
    old = emu.create_transcript("us", created=datetime.now(timezone.utc) - timedelta(days=1))
    gone = emu.create_transcript("us", deleted=True)
    busy = emu.create_transcript("us", status="processing")

    def ids(query: str) -> list[str]:
        return list(httpx.get(admin(emu, "us", f"transcripts?{query}")).json()["ids"])

    assert ids("") == [busy, gone, old]
    assert ids("deleted=true") == [gone]
    assert ids("deleted=false&status=completed") == [old]


def test_the_request_log_pages_and_admin_calls_stay_out_of_it(
    emu: AssemblyAIEmulator, http: httpx.Client
) -> None:
    emu.set_rate_limit(1, 60)
    tid = emu.create_transcript("eu")
    http.get(tr_url(emu, "eu", tid))
    http.delete(tr_url(emu, "eu", tid))  # over the limit: 429
    first = httpx.get(admin(emu, "us", "requests")).json()
    assert [(r["region"], r["method"], r["status"]) for r in first["requests"]] == [
        ("eu", "GET", 200),
        ("eu", "DELETE", 429),
    ]
    assert first["requests"][0]["path"] == f"/v2/transcript/{tid}"
    assert datetime.fromisoformat(first["requests"][0]["time"]).tzinfo is not None
    # Admin calls are neither limited nor logged; the cursor returns only what is new.
    for _ in range(3):
        assert httpx.get(admin(emu, "eu", "transcripts")).status_code == 200
    http.get(tr_url(emu, "us"))
    later = httpx.get(admin(emu, "eu", "requests"), params={"since": first["next"]}).json()
    assert [(r["method"], r["path"], r["status"]) for r in later["requests"]] == [
        ("GET", "/v2/transcript", 429)
    ]
    assert later["next"] == 3
    assert emu.counters["requests"] == 3


# -- what the CLI's ``seed`` sends: age_days, region, deleted -----------------------------------


def test_old_eu_transcripts_for_a_purge_try_out(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    response = httpx.post(
        admin(emu, "us", "transcripts"),  # any port: the region is in the body
        json=[{"region": "eu", "status": "completed", "age_days": 120 + i / 86_400} for i in range(3)],
    )
    assert response.status_code == 200, response.text
    ids = response.json()["ids"]
    assert ids == emu.ids("eu")  # newest first: each spec a second older
    assert emu.ids("us") == []
    assert list_page(http, emu, "eu")["transcripts"] == []  # older than the API's 90-day list window
    emu.configure(list_retention_days=None)
    created = [datetime.fromisoformat(t["created"]) for t in list_page(http, emu, "eu")["transcripts"]]
    expected = emu.clock.now().replace(tzinfo=None) - timedelta(days=120)
    assert created == [expected - timedelta(seconds=i) for i in range(3)]


def test_deleted_and_in_progress_ones(emu: AssemblyAIEmulator) -> None:
    body = [
        {"status": "completed", "deleted": True, "count": 2},
        {"status": "processing", "completes_in": 30},
        {"status": "processing"},
    ]
    gone_1, gone_2, finishing, stuck = httpx.post(admin(emu, "us", "transcripts"), json=body).json()["ids"]
    assert emu.is_deleted("us", gone_1)
    assert emu.is_deleted("us", gone_2)
    emu.advance(31)
    assert [emu.get("us", t)["status"] for t in (finishing, stuck)] == ["completed", "processing"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"region": "ap"}, "unknown region 'ap'"),
        ({"age_days": -1}, "age_days must be a number of days >= 0, got -1"),
        ({"age_days": "old"}, "age_days must be a number of days >= 0, got 'old'"),
        ({"age_days": 1, "created": "2024-01-01T00:00:00"}, "give created or age_days, not both"),
    ],
)
def test_bad_seed_fields_are_400_naming_the_field(
    emu: AssemblyAIEmulator, body: object, message: str
) -> None:
    response = httpx.post(admin(emu, "us", "transcripts"), json=body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]
    assert emu.ids("us") == emu.ids("eu") == []


async def test_only_loopback_clients_are_answered(emu: AssemblyAIEmulator) -> None:
    app = build_app(emu.state, "us", emu.base_url("us"), Sleeper())

    async def post_from(host: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(host, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as http:
            return await http.post("/_emulator/transcripts", json={})

    refused = await post_from("192.0.2.7")
    assert refused.status_code == 403
    assert refused.json() == {"error": "the emulator's admin endpoints only answer loopback clients"}
    assert [(await post_from(host)).status_code for host in ("::1", "127.0.0.1")] == [200, 200]
    assert len(emu.ids("us")) == 2
