"""Shared fixtures; the emulator fixtures (``assemblyai_emulator``...) come from the package's plugin."""

from __future__ import annotations

import importlib.util
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import respx
from airflow import __version__ as airflow_version

from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook
from airflow_provider_assemblyai.testing import AssemblyAIEmulator, ManualClock

#: The purge audit's stores (memory://, and S3 on moto's server when the s3-tests extra is installed).
pytest_plugins = ["tests.audit_stores"]

TEST_API_KEY = "test-key-7f3a9c2e51"  # distinctive, so a leak is easy to grep for

#: Airflow 3.0.x and 3.1.x drop a connection whose extra is not a JSON object while looking it up (the
#: secrets lookup swallows the parse error), so the hook never sees it and Airflow reports "The conn_id
#: ... isn't defined" instead of the hook's own error naming the extra. 3.2 hands it over again.
AIRFLOW_DROPS_NON_OBJECT_EXTRAS = airflow_version.startswith(("3.0.", "3.1."))

#: Airflow 3.0.x's ``dag.test()`` runs each task in process and writes its log nowhere a test can read
#: (not the console, not the log records, not ``$AIRFLOW_HOME/logs``): a failed task's error text is
#: lost there, its state is not. ``airflow dags test`` and real task logs show it.
AIRFLOW_DAG_TEST_HIDES_TASK_ERRORS = airflow_version.startswith("3.0.")


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
    """Keep retry backoff tiny and exact in tests; a Retry-After test raises ``retry_after_cap`` itself."""
    monkeypatch.setattr(AssemblyAIHook, "retry_initial_wait", 0.001)
    monkeypatch.setattr(AssemblyAIHook, "retry_max_wait", 0.01)
    monkeypatch.setattr(AssemblyAIHook, "retry_after_cap", 0.05)
    monkeypatch.setattr(AssemblyAIHook, "retry_after_jitter", 0.0)  # exact waits; one test sets it


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
def connection_extra() -> dict[str, object]:
    """The extra of the connection ``emu`` defines; a module or folder overrides this fixture to change it."""
    return {}


@pytest.fixture
def emu(
    assemblyai_emulator: AssemblyAIEmulator,
    set_connection: Callable[..., None],
    connection_extra: dict[str, object],
) -> AssemblyAIEmulator:
    """
    The plugin's emulator for this test, behind ``assemblyai_default`` (US region, ``TEST_API_KEY``).

    Mark the test (or module) ``pytest.mark.assemblyai_emulator(api_keys=(TEST_API_KEY,), ...)`` for
    the emulator to accept the connection's key; a folder may override ``assemblyai_emulator`` itself.
    """
    set_connection(region="us", base_url=assemblyai_emulator.base_url("us"), **connection_extra)
    return assemblyai_emulator


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    """A respx router: every request must match a route, so nothing leaves the process."""
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        yield router


@pytest.fixture
async def shared_clients() -> AsyncIterator[None]:
    """Close the AsyncClients shared on the test's event loop before pytest-asyncio closes the loop."""
    yield
    await AssemblyAIHook.aclose_shared_clients()


@dataclass(frozen=True)
class Gateway:
    """An emulator reached through ``base_url`` whose list links name another host (``upstream``)."""

    emu: AssemblyAIEmulator
    upstream: AssemblyAIEmulator
    link_base_url: str

    def assert_nothing_sent_upstream(self) -> None:
        """The API's own host never received a request (nor, so, the key)."""
        assert self.upstream.requests == []


@pytest.fixture
def behind_gateway(set_connection: Callable[..., None]) -> Iterator[Gateway]:
    """
    The real API behind a gateway: ``assemblyai_default`` (US) has the emulator as ``base_url``, and
    the emulator writes its list links (``prev_url``, ``resource_url``...) on another host, the way
    the API names its own host. That host is a second emulator on ``localhost``, so a request that
    followed a link would show in its log. Both run on a manual clock.
    """
    clock = ManualClock()
    with AssemblyAIEmulator(api_keys=(TEST_API_KEY,), clock=clock) as upstream:
        link_base_url = upstream.base_url("us").replace("127.0.0.1", "localhost")
        with AssemblyAIEmulator(api_keys=(TEST_API_KEY,), clock=clock, link_base_url=link_base_url) as emu:
            set_connection(region="us", base_url=emu.base_url("us"), max_retries=0)
            yield Gateway(emu, upstream, link_base_url)


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


def status_event(
    status: str,
    transcript_id: str,
    transcript_status: str | None,
    message: str,
    *,
    error: str | None = None,
    audio_duration: float | None = None,
) -> dict[str, Any]:
    """A TranscriptStatusTrigger event payload, as the trigger builds it."""
    return {
        "status": status,
        "transcript_id": transcript_id,
        "transcript_status": transcript_status,
        "error": error,
        "audio_duration": audio_duration,
        "message": message,
    }


def provider_modules_loaded_by(code: str) -> list[str]:
    """The provider's modules a fresh interpreter imported to run ``code`` (what a DAG file costs)."""
    report = (
        "import json, sys\nprint(json.dumps([m for m in sys.modules if m.startswith('airflow_provider')]))"
    )
    output = subprocess.run(
        [sys.executable, "-c", f"{code}\n{report}\n"], capture_output=True, text=True, check=True, timeout=120
    )
    loaded: list[str] = json.loads(output.stdout.strip().splitlines()[-1])
    return loaded
