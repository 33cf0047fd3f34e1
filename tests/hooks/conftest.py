"""Fixtures for the hook tests: a hook on the default connection, a retry-wait spy."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tenacity import RetryCallState

from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook


@pytest.fixture
def hook(set_connection: Callable[..., None]) -> Iterator[AssemblyAIHook]:
    """A hook on ``assemblyai_default`` (US region, the test key)."""
    set_connection()
    hook = AssemblyAIHook()
    yield hook
    hook.close()


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record every sleep tenacity is about to take between attempts (tiny in tests, but real)."""
    recorded: list[float] = []
    original = AssemblyAIHook._retry_policy

    def spy(self: AssemblyAIHook, *args: Any, **kwargs: Any) -> dict[str, Any]:
        policy = original(self, *args, **kwargs)
        before_sleep: Callable[[RetryCallState], None] = policy["before_sleep"]

        def recording(state: RetryCallState) -> None:
            assert state.next_action is not None
            recorded.append(state.next_action.sleep)
            before_sleep(state)

        policy["before_sleep"] = recording
        return policy

    monkeypatch.setattr(AssemblyAIHook, "_retry_policy", spy)
    return recorded
