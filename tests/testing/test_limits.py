"""Account-wide rate limiting and simulated network latency."""

from __future__ import annotations

import asyncio
import time

import httpx

from airflow_provider_assemblyai.testing import AssemblyAIEmulator
from tests.testing.conftest import Validate
from tests.testing.helpers import KEY, tr_url


def test_rate_limit_is_shared_across_regions(
    emu: AssemblyAIEmulator, http: httpx.Client, validate: Validate
) -> None:
    emu.set_rate_limit(5, 300.0)
    codes = [
        http.get(tr_url(emu, region)).status_code for region in ("us", "eu", "us", "eu", "us", "eu", "us")
    ]
    assert codes == [200] * 5 + [429, 429]
    resp = http.get(tr_url(emu, "eu"))
    assert resp.status_code == 429
    assert resp.json() == {"error": "Too Many Requests"}
    validate("Error", resp.json())
    assert int(resp.headers["retry-after"]) == 60  # one token per 60 s
    assert emu.rate_limited_count == 3
    assert emu.counters["status_429"] == 3


def test_rate_limit_refills_with_the_clock(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    emu.set_rate_limit(2, 1.0)
    assert [http.get(tr_url(emu)).status_code for _ in range(3)] == [200, 200, 429]
    emu.advance(0.5)
    assert http.get(tr_url(emu)).status_code == 200
    assert http.get(tr_url(emu)).status_code == 429
    emu.set_rate_limit(None)
    assert http.get(tr_url(emu)).status_code == 200


def test_unauthenticated_requests_do_not_use_tokens(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    emu.set_rate_limit(1, 300.0)
    assert httpx.get(tr_url(emu)).status_code == 401
    assert http.get(tr_url(emu)).status_code == 200


def test_rate_limit_from_constructor_survives_reset() -> None:
    emu = AssemblyAIEmulator(api_keys=(KEY,), rate_limit=(1, 300.0))
    with emu, httpx.Client(headers={"Authorization": KEY}) as client:
        assert [client.get(tr_url(emu)).status_code for _ in range(2)] == [200, 429]
        emu.reset()
        assert [client.get(tr_url(emu)).status_code for _ in range(2)] == [200, 429]


async def _timed_burst(emu: AssemblyAIEmulator, n: int) -> tuple[float, list[int]]:
    async with httpx.AsyncClient(headers={"Authorization": KEY}, timeout=5) as client:
        t0 = time.perf_counter()
        resps = await asyncio.gather(*(client.get(tr_url(emu)) for _ in range(n)))
        return time.perf_counter() - t0, [r.status_code for r in resps]


def test_latency_overlaps_under_concurrency(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    emu.set_latency(250)
    t0 = time.perf_counter()
    assert http.get(tr_url(emu)).status_code == 200
    assert time.perf_counter() - t0 >= 0.24
    elapsed, codes = asyncio.run(_timed_burst(emu, 12))
    assert codes == [200] * 12
    burst = emu.requests[1:]
    assert all(r.elapsed_ms >= 240 for r in emu.requests)
    # Served one after another, the burst would take the sum of its latencies; it overlaps.
    # (Both sides are measured on the same, possibly busy, machine: no fixed time limit.)
    assert 0.24 <= elapsed < sum(r.elapsed_ms for r in burst) / 1000 / 2


def test_latency_jitter_stays_in_range(emu: AssemblyAIEmulator) -> None:
    emu.set_latency(60, jitter_ms=40)
    drawn = [emu.state.latency_seconds() for _ in range(200)]
    assert all(0.02 <= seconds <= 0.1 for seconds in drawn)
    assert max(drawn) - min(drawn) > 0.05  # actually jittered
    _, codes = asyncio.run(_timed_burst(emu, 20))
    assert codes == [200] * 20
    assert min(r.elapsed_ms for r in emu.requests) >= 19  # each request waited its draw
