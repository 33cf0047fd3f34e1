"""PerEventLoop: one value per event loop, made on first use and dropped with the loop."""

from __future__ import annotations

import asyncio
import gc

from airflow_provider_assemblyai._loop_state import PerEventLoop


def test_each_loop_has_its_own_value_made_once() -> None:
    state: PerEventLoop[list[int]] = PerEventLoop(list)

    async def append(n: int) -> list[int]:
        state.current().append(n)
        state.current().append(n + 1)
        return state.current()

    first, second = asyncio.run(append(1)), asyncio.run(append(10))
    assert (first, second) == ([1, 2], [10, 11])


def test_a_collected_loop_takes_its_value_with_it() -> None:
    state: PerEventLoop[dict[str, int]] = PerEventLoop(dict)
    loop = asyncio.new_event_loop()

    async def touch() -> None:
        state.current()["n"] = 1

    loop.run_until_complete(touch())
    assert state[loop] == {"n": 1}
    loop.close()
    del loop
    gc.collect()
    assert len(state) == 0
