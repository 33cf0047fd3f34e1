"""The list endpoint: order, filters, limits, cursors, page links, full walks, retention, seeding."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from airflow_provider_assemblyai.testing import AssemblyAIEmulator
from airflow_provider_assemblyai.testing.state import EmulatorState
from tests.testing.helpers import LOOKUP_ERROR, list_page, tr_url, walk


def _ids(page: dict[str, object]) -> list[str]:
    return [t["id"] for t in page["transcripts"]]  # type: ignore[attr-defined,index]


def _query(link: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(link).query)


def test_newest_first_with_default_limit(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    ids = emu.seed(25)
    page = list_page(http, emu)
    assert _ids(page) == ids[:10]
    details = page["page_details"]
    assert details["limit"] == 10
    assert details["result_count"] == 10
    assert details["current_url"] == f"{emu.base_url('us')}/v2/transcript?limit=10"
    assert details["prev_url"] == f"{emu.base_url('us')}/v2/transcript?limit=10&before_id={ids[9]}"
    assert details["next_url"] == f"{emu.base_url('us')}/v2/transcript?limit=10&after_id={ids[0]}"
    created = [t["created"] for t in page["transcripts"]]
    assert created == sorted(created, reverse=True)
    item = page["transcripts"][0]
    assert item["resource_url"] == tr_url(emu, "us", ids[0])


@pytest.mark.parametrize("limit", ["0", "201", "-1", "abc", "1.5", ""])
def test_limit_out_of_range_is_400(emu: AssemblyAIEmulator, http: httpx.Client, limit: str) -> None:
    resp = http.get(tr_url(emu), params={"limit": limit})
    assert resp.status_code == 400
    assert isinstance(resp.json()["error"], str)


@pytest.mark.parametrize("limit", [1, 200])
def test_limit_bounds_are_inclusive(emu: AssemblyAIEmulator, http: httpx.Client, limit: int) -> None:
    emu.seed(250)
    page = list_page(http, emu, limit=limit)
    assert page["page_details"]["result_count"] == limit


def test_status_filter(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    emu.seed(60, statuses=["completed", "error", "queued", "processing", "deleted"])
    for status in ("completed", "error", "queued", "processing"):
        page = list_page(http, emu, status=status, limit=100)
        assert {t["status"] for t in page["transcripts"]} == {status}
        assert _ids(page) == emu.ids("us", status=status)
        assert page["page_details"]["current_url"].endswith(f"limit=100&status={status}")
    assert http.get(tr_url(emu), params={"status": "done"}).status_code == 400
    errors = list_page(http, emu, status="error", limit=100)["transcripts"]
    assert all(t["error"] and t["completed"] is None for t in errors)


def test_created_on_filter(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    now = emu.clock.now()
    day = (now - timedelta(days=3)).date()
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    inside = [emu.create_transcript("us", created=start + timedelta(hours=h)) for h in (0, 5, 23.99)]
    emu.create_transcript("us", created=start - timedelta(seconds=1))
    emu.create_transcript("us", created=start + timedelta(days=1))
    page = list_page(http, emu, created_on=day.isoformat(), limit=2)
    assert _ids(page) == inside[::-1][:2]
    assert _ids(list_page(http, emu, created_on=day.isoformat(), before_id=_ids(page)[-1])) == inside[:1]
    assert walk(http, page["page_details"]["current_url"])[-1]["id"] == inside[0]
    resp = http.get(tr_url(emu), params={"created_on": "03/01/2024"})
    assert resp.status_code == 400


def test_before_and_after_id(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    ids = emu.seed(30)  # newest first
    assert _ids(list_page(http, emu, before_id=ids[4], limit=5)) == ids[5:10]
    # after_id: the page of transcripts just newer than the cursor, newest first
    assert _ids(list_page(http, emu, after_id=ids[10], limit=3)) == ids[7:10]
    assert _ids(list_page(http, emu, after_id=ids[1])) == ids[:1]
    assert _ids(list_page(http, emu, after_id=ids[0])) == []
    # both: after must be newer than before
    resp = http.get(tr_url(emu), params={"before_id": ids[2], "after_id": ids[8]})
    assert resp.status_code == 400
    assert resp.json() == {"error": "'after_id' must be a newer transcript than 'before_id'"}
    assert http.get(tr_url(emu), params={"before_id": ids[2], "after_id": ids[2]}).status_code == 400
    assert _ids(list_page(http, emu, before_id=ids[8], after_id=ids[2])) == []
    resp = http.get(tr_url(emu), params={"before_id": "00000000-0000-4000-8000-000000000000"})
    assert (resp.status_code, resp.json()) == (400, LOOKUP_ERROR)


def test_next_url_pages_back_towards_newer(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    ids = emu.seed(12)
    older = http.get(list_page(http, emu, limit=5)["page_details"]["prev_url"]).json()
    assert _ids(older) == ids[5:10]
    newer = http.get(older["page_details"]["next_url"]).json()
    assert _ids(newer) == ids[0:5]
    assert _query(older["page_details"]["next_url"])["after_id"] == [ids[5]]


def test_prev_url_is_null_at_the_end_and_on_empty(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    empty = list_page(http, emu)
    assert empty["transcripts"] == []
    assert empty["page_details"]["prev_url"] is None
    assert empty["page_details"]["next_url"] is None
    ids = emu.seed(10)
    exact = list_page(http, emu, limit=10)
    assert _ids(exact) == ids
    assert exact["page_details"]["prev_url"] is None


def test_full_walk_of_ten_thousand(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    ids = emu.seed(10_000, statuses={"completed": 0.8, "error": 0.1, "deleted": 0.1})
    start = f"{emu.base_url('us')}/v2/transcript?limit=200"
    got = [t["id"] for t in walk(http, start)]
    assert got == ids
    assert len(set(got)) == 10_000
    pages = emu.requests_for(method="GET", path="/v2/transcript")
    assert len(pages) == 50
    assert [_query("?" + r.query).get("before_id") for r in pages[1:3]] == [[ids[199]], [ids[399]]]


def test_walk_with_status_filter_and_odd_limit(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    emu.seed(700, statuses={"completed": 0.9, "error": 0.1}, random_seed=7)
    start = list_page(http, emu, status="error", limit=7)["page_details"]["current_url"]
    got = [t["id"] for t in walk(http, start)]
    assert got == emu.ids("us", status="error")
    assert len(got) == len(set(got)) > 30


def test_deleted_transcripts_stay_listed(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    ids = emu.seed(5, statuses=["completed"])
    assert http.delete(tr_url(emu, "us", ids[2])).status_code == 200
    items = list_page(http, emu)["transcripts"]
    assert [t["id"] for t in items] == ids
    assert items[2]["audio_url"] == "http://deleted_by_user"
    assert items[2]["status"] == "completed"
    assert items[2]["completed"] is not None
    assert all(t["audio_url"] != "http://deleted_by_user" for i, t in enumerate(items) if i != 2)


def test_only_recent_90_days_are_listed(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    now = emu.clock.now()
    old = emu.create_transcript("us", created=now - timedelta(days=91))
    recent = emu.create_transcript("us", created=now - timedelta(days=89))
    assert _ids(list_page(http, emu)) == [recent]
    assert http.get(tr_url(emu, "us", old)).status_code == 200
    assert http.delete(tr_url(emu, "us", old)).status_code == 200
    emu.configure(list_retention_days=None)
    assert _ids(list_page(http, emu)) == [recent, old]


def test_timestamps_look_like_the_real_api(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    emu.seed(3)
    item = list_page(http, emu)["transcripts"][0]
    parsed = datetime.strptime(item["created"], "%Y-%m-%dT%H:%M:%S.%f")
    assert parsed.tzinfo is None
    assert not item["created"].endswith("Z")
    assert item["completed"] >= item["created"]


def test_seed_spreads_creation_dates_over_the_span(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    emu.configure(list_retention_days=None)
    anchor = datetime(2025, 6, 1, tzinfo=timezone.utc)
    ids = emu.seed(2000, span=timedelta(days=60), now=anchor, statuses={"completed": 0.8, "error": 0.2})
    items = walk(http, f"{emu.base_url('us')}/v2/transcript?limit=200")
    assert [t["id"] for t in items] == ids
    created = [datetime.fromisoformat(t["created"]).replace(tzinfo=timezone.utc) for t in items]
    ages = [(anchor - c).total_seconds() / 86400 for c in created]
    assert min(ages) >= 0
    assert max(ages) <= 60
    assert min(ages) < 1
    assert max(ages) > 59
    per_decade = Counter(int(a // 10) for a in ages)
    assert all(250 < per_decade[d] < 420 for d in range(6)), per_decade
    statuses = Counter(emu.get("us", t)["status"] for t in ids)
    assert 1500 < statuses["completed"] < 1700
    assert statuses["error"] == 2000 - statuses["completed"]


def test_seed_is_deterministic() -> None:
    anchor = datetime(2025, 1, 1, tzinfo=timezone.utc)
    a = EmulatorState().seed(50, now=anchor, random_seed=3)
    b = EmulatorState().seed(50, now=anchor, random_seed=3)
    c = EmulatorState().seed(50, now=anchor, random_seed=4)
    assert a == b != c
    assert EmulatorState(config=None).seed(5, now=anchor) == EmulatorState().seed(5, now=anchor)


def test_seed_validates_statuses(emu: AssemblyAIEmulator) -> None:
    with pytest.raises(ValueError, match="statuses"):
        emu.seed(3, statuses=["finished"])
    with pytest.raises(ValueError, match="weights"):
        emu.seed(3, statuses={"completed": 0})


def test_link_base_url_writes_every_absolute_link_on_another_host(
    emu: AssemblyAIEmulator, http: httpx.Client
) -> None:
    """As the real API behind a gateway: links name the API's own host, not the one that was asked."""
    ids = emu.seed(12)
    emu.configure(link_base_url="https://api.assemblyai.com/")
    upstream = "https://api.assemblyai.com/v2/transcript"
    for region in ("us", "eu"):
        emu.seed(3, region, statuses=["completed"])
        page = list_page(http, emu, region, limit=2, status="completed")
        details = page["page_details"]
        assert details["current_url"] == f"{upstream}?limit=2&status=completed"
        assert details["prev_url"].startswith(f"{upstream}?limit=2&status=completed&before_id=")
        assert details["next_url"].startswith(f"{upstream}?limit=2&status=completed&after_id=")
        assert all(t["resource_url"] == f"{upstream}/{t['id']}" for t in page["transcripts"])
    assert emu.requests[0].path == "/v2/transcript"  # served here, whatever the links say
    emu.configure(link_base_url=None)
    assert list_page(http, emu, limit=1)["page_details"]["prev_url"] == (
        f"{tr_url(emu)}?limit=1&before_id={ids[0]}"
    )


@pytest.mark.parametrize(
    "bad", ["api.assemblyai.com", "ftp://api.assemblyai.com", "https://", "https://x/?a=1"]
)
def test_link_base_url_must_be_an_http_base_url(bad: str) -> None:
    with pytest.raises(
        ValueError,
        match=re.escape("link_base_url must be an http(s) base URL") + f".*{re.escape(repr(bad))}",
    ):
        AssemblyAIEmulator(link_base_url=bad)
