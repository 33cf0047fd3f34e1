"""Fixtures for the emulator tests: a shared emulator on a manual clock, an HTTP client, spec validation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from airflow_provider_assemblyai.testing import AssemblyAIEmulator, ManualClock
from tests.testing.helpers import KEY

SPEC_PATH = Path(__file__).parent / "data" / "assemblyai-openapi.yml"
SPEC_URI = "urn:assemblyai-openapi"

Validate = Callable[[str, Any], None]


@pytest.fixture(scope="session")
def spec() -> dict[str, Any]:
    """AssemblyAI's own OpenAPI 3.1 spec (a copy of the vendor file)."""
    with SPEC_PATH.open(encoding="utf-8") as fh:
        loaded: dict[str, Any] = yaml.safe_load(fh)
    return loaded


@pytest.fixture(scope="session")
def validate(spec: dict[str, Any]) -> Validate:
    """``validate("Transcript", body)``: assert ``body`` matches ``#/components/schemas/<name>``."""
    registry: Registry[Any] = Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(spec))
    validators: dict[str, Draft202012Validator] = {}

    def _validate(name: str, instance: Any) -> None:
        if name not in validators:
            assert name in spec["components"]["schemas"], name
            validators[name] = Draft202012Validator(
                {"$ref": f"{SPEC_URI}#/components/schemas/{name}"},
                registry=registry,
                format_checker=FormatChecker(),
            )
        errors = sorted(validators[name].iter_errors(instance), key=lambda e: list(e.path))
        assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)

    return _validate


@pytest.fixture(scope="session")
def manual_clock() -> ManualClock:
    """The shared emulator's clock (only ever moves forward)."""
    return ManualClock(datetime.now(timezone.utc).replace(microsecond=123456))


@pytest.fixture(scope="session")
def shared_emu(manual_clock: ManualClock) -> Iterator[AssemblyAIEmulator]:
    """One emulator for most tests (reset before each)."""
    with AssemblyAIEmulator(api_keys=(KEY, "second-key"), clock=manual_clock) as emu:
        yield emu


@pytest.fixture
def emu(shared_emu: AssemblyAIEmulator) -> Iterator[AssemblyAIEmulator]:
    """The shared emulator, freshly reset."""
    shared_emu.reset()
    yield shared_emu
    shared_emu.reset()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """An HTTP client sending the right key."""
    with httpx.Client(headers={"Authorization": KEY}, timeout=5.0) as client:
        yield client
