"""The pytest fixtures shipped in ``airflow_provider_assemblyai.testing.pytest_plugin``."""

from __future__ import annotations

import json
import os

import httpx
import pytest

from airflow_provider_assemblyai.testing import AssemblyAIEmulator


def test_function_fixture(assemblyai_emulator: AssemblyAIEmulator) -> None:
    assert assemblyai_emulator.running
    assert assemblyai_emulator.api_keys == ("test-key",)
    resp = httpx.get(
        assemblyai_emulator.base_url("eu") + "/v2/transcript", headers={"Authorization": "test-key"}
    )
    assert resp.status_code == 200


@pytest.mark.assemblyai_emulator(queued_seconds=0, allow_delete_in_progress=True, api_keys=("marker-key",))
def test_marker_configures_the_fixture(assemblyai_emulator: AssemblyAIEmulator) -> None:
    assert assemblyai_emulator.state.config.queued_seconds == 0
    assert assemblyai_emulator.state.config.allow_delete_in_progress is True
    assert assemblyai_emulator.api_keys == ("marker-key",)


def test_session_fixture_with_reset(assemblyai_emulator_session: AssemblyAIEmulator) -> None:
    assemblyai_emulator_session.reset()
    assemblyai_emulator_session.seed(3)
    assert len(assemblyai_emulator_session.ids("us")) == 3
    assemblyai_emulator_session.reset()
    assert assemblyai_emulator_session.ids("us") == []


def test_conn_fixture_sets_the_airflow_connection(assemblyai_emulator_conn: AssemblyAIEmulator) -> None:
    conn = json.loads(os.environ["AIRFLOW_CONN_ASSEMBLYAI_DEFAULT"])
    assert conn["password"] == "test-key"
    assert conn["extra"] == {"region": "us", "base_url": assemblyai_emulator_conn.base_url("us")}
