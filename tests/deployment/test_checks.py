"""The deployment run's judges (tests/deployment/checks.py), on hand-made inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.deployment import checks
from tests.test_audit import _flip_outcome, die, killed_then_rerun, writer

T1, T2, T3 = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222", "3" * 8


def request(
    time: str, method: str, path: str, status: int, query: str = "", region: str = "eu"
) -> dict[str, Any]:
    return {
        "time": f"2026-01-01T00:00:{time}+00:00",
        "region": region,
        "method": method,
        "path": path,
        "query": query,
        "status": status,
    }


async def test_audited_deletions_credit_each_attempt_including_recovered_intents(tmp_path: Path) -> None:
    # Attempt 1 deletes a, b and c but is killed before c's line is stored; attempt 2 recovers c
    # (deleted, credited to attempt 1), finds d not deleted and deletes it.
    uri = (tmp_path / "purge.jsonl").as_uri()
    await killed_then_rerun(uri)
    assert checks.audited_deletions(uri) == {1: {"a", "b", "c"}, 2: {"d"}}


async def test_audited_deletions_refuse_an_audit_with_open_intents(tmp_path: Path) -> None:
    uri = (tmp_path / "purge.jsonl").as_uri()
    first = writer(uri, 1)
    await first.open()
    await first.wait_stored(first.intent("x", created=None, status="completed"))
    await die(first)
    with pytest.raises(AssertionError, match="unsettled intents: \\['x'\\]"):
        checks.audited_deletions(uri)


async def test_audited_deletions_refuse_a_tampered_audit(tmp_path: Path) -> None:
    uri = (tmp_path / "purge.jsonl").as_uri()
    await killed_then_rerun(uri)
    _flip_outcome(tmp_path / "purge")
    with pytest.raises(AssertionError, match="is not intact"):
        checks.audited_deletions(uri)


def test_successful_deletions_count_only_200_deletes_per_region() -> None:
    log = [
        request("01", "DELETE", f"/v2/transcript/{T1}", 429),
        request("02", "DELETE", f"/v2/transcript/{T1}", 200),
        request("03", "DELETE", f"/v2/transcript/{T1}", 200, region="us"),
        request("04", "GET", f"/v2/transcript/{T2}", 200),
        request("05", "GET", "/v2/transcript", 200, "limit=200"),
    ]
    assert checks.successful_deletions(log) == {("eu", T1): 1, ("us", T1): 1}


def test_a_429_retried_after_its_retry_after_is_absorbed() -> None:
    log = [
        request("01.000", "DELETE", f"/v2/transcript/{T1}", 429),
        request("02.100", "DELETE", f"/v2/transcript/{T1}", 429),
        request("03.200", "DELETE", f"/v2/transcript/{T1}", 200),
        request("01.000", "GET", "/v2/transcript", 429, "status=processing"),
        request("01.300", "GET", "/v2/transcript", 200, "status=processing"),  # another triggerer's listing
    ]
    assert checks.unabsorbed_rate_limits(log) == []
    assert checks.longest_rate_limit_streak(log) == 2


def test_a_429_never_retried_or_retried_too_soon_is_reported() -> None:
    log = [
        request("01.000", "DELETE", f"/v2/transcript/{T1}", 429),
        request("01.200", "DELETE", f"/v2/transcript/{T1}", 200),
        request("05.000", "GET", f"/v2/transcript/{T2}", 429),
    ]
    problems = checks.unabsorbed_rate_limits(log)
    assert len(problems) == 2
    assert "retried 0.20s after its 429" in problems[0]
    assert f"GET /v2/transcript/{T2}? (eu)" in problems[1]
    assert "never retried" in problems[1]


def test_leaks_name_every_source_holding_the_secret(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "task.log").write_text("auth sk-secret-1 used")
    (tmp_path / "emulator").mkdir()
    (tmp_path / "emulator" / "out.log").write_text("--api-key sk-secret-1")
    sources: dict[str, str | bytes] = {"pg_dump": "no key here", "redis": "sk-secret-1"}
    sources.update(checks.files_under(tmp_path, exclude=[tmp_path / "emulator"]))
    assert checks.leaks("sk-secret-1", sources) == sorted([str(tmp_path / "logs" / "task.log"), "redis"])
