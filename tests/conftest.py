"""Shared fixtures; the emulator fixtures (``assemblyai_emulator``...) come from the package's plugin."""

from __future__ import annotations

import importlib.util
import json
import logging
import threading
import time
from collections.abc import Callable

import pytest
from airflow import __version__ as airflow_version

from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook
from airflow_provider_assemblyai.testing import AssemblyAIEmulator

TEST_API_KEY = "test-key-7f3a9c2e51"  # distinctive, so a leak is easy to grep for

#: Airflow 3.0.x and 3.1.x drop a connection whose extra is not a JSON object while looking it up (the
#: secrets lookup swallows the parse error), so the hook never sees it and Airflow reports "The conn_id
#: ... isn't defined" instead of the hook's own error naming the extra. 3.2 hands it over again.
AIRFLOW_DROPS_NON_OBJECT_EXTRAS = airflow_version.startswith(("3.0.", "3.1."))


def skip_without_the_connection_form_toolkit() -> None:
    """
    Skip a connection-form check where the running Airflow cannot build any provider's form.

    Airflow 3.0 and 3.1 build the extra fields from the hooks' WTForms widgets, which needs Flask
    AppBuilder (and WTForms) installed; Airflow 3.x does not install them, and then shows no custom
    field for any provider. 2.11 ships them; 3.2 and later read ``conn-fields`` from the provider info.
    """
    if airflow_version.startswith(("3.0.", "3.1.")) and importlib.util.find_spec("flask_appbuilder") is None:
        pytest.skip(f"Airflow {airflow_version} without Flask AppBuilder builds no connection form")


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep retry backoff tiny in tests; a test about Retry-After raises ``retry_after_cap`` itself."""
    monkeypatch.setattr(AssemblyAIHook, "retry_initial_wait", 0.001)
    monkeypatch.setattr(AssemblyAIHook, "retry_max_wait", 0.01)
    monkeypatch.setattr(AssemblyAIHook, "retry_after_cap", 0.05)


@pytest.fixture
def set_connection(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Define an AssemblyAI connection through ``AIRFLOW_CONN_<ID>`` (JSON form)."""

    def _set(
        conn_id: str = "assemblyai_default",
        *,
        password: str | None = TEST_API_KEY,
        **extra: object,
    ) -> None:
        value: dict[str, object] = {"conn_type": "assemblyai", "extra": extra}
        if password is not None:
            value["password"] = password
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(value))

    return _set


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> Callable[[], str]:
    """
    Return everything logged so far, at DEBUG and above.

    Airflow 2 logs through stdlib logging (caplog); Airflow 3's structlog writes to stderr (capfd).
    """
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []

    def text() -> str:
        captured = capfd.readouterr()
        seen.extend((captured.out, captured.err))
        return caplog.text + "".join(seen)

    return text


def complete_after_polls(emu: AssemblyAIEmulator, tid: str, polls: int, stop: threading.Event) -> None:
    """Advance the emulator's manual clock once ``tid`` was polled ``polls`` times (bounded wait).

    Run it in a thread beside a ``dag.test()``; set ``stop`` to end it early.
    """
    deadline = time.monotonic() + 240
    while not stop.is_set() and time.monotonic() < deadline:
        if len([r for r in emu.requests if r.method == "GET" and r.path.endswith(tid)]) >= polls:
            emu.advance(600)
            return
        stop.wait(0.05)
