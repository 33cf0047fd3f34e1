"""
A purge killed with SIGKILL mid-flight, then re-run: nothing is reported deleted that was not, and the
re-run finishes the job with exact counts (the first run's deletions counted as ``already_deleted``).

The purge runs in a child process (``PurgeTranscriptsOperator.execute``) against an emulator in this
process, slowed down with latency so the kill lands while deletions are in flight.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_assemblyai.operators.assemblyai import PurgeTranscriptsOperator
from airflow_provider_assemblyai.testing import AssemblyAIEmulator
from tests.conftest import TEST_API_KEY

TRANSCRIPTS = 120
PURGE_SCRIPT = """
    import sys
    from datetime import timedelta

    from airflow_provider_assemblyai.operators.assemblyai import PurgeTranscriptsOperator

    operator = PurgeTranscriptsOperator(
        task_id="purge", older_than=timedelta(0), concurrency=2, audit_path=sys.argv[1]
    )
    print("purge starting", flush=True)
    operator.execute({})
"""


@pytest.fixture
def slow_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[AssemblyAIEmulator]:
    with AssemblyAIEmulator(api_keys=(TEST_API_KEY,), latency_ms=40) as emu:
        for name, value in emu.connection_env("us").items():
            monkeypatch.setenv(name, value)
        yield emu


def wait_until(condition: Any, what: str, timeout: float = 120.0) -> None:
    """Poll ``condition`` until it is true (generous timeout: the machine is shared)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def settled(emu: AssemblyAIEmulator) -> int:
    """Wait until no request is in flight any more (the deleted count stops moving); return it."""
    last, stable_since = -1, time.monotonic()
    while time.monotonic() - stable_since < 0.5:
        count = len(emu.ids("us", deleted=True))
        if count != last:
            last, stable_since = count, time.monotonic()
        time.sleep(0.05)
    return last


def audit_lines(path: Path) -> list[dict[str, Any]]:
    """The audit's complete lines; a line cut short by the kill is ignored (it is the last one)."""
    lines = path.read_text(encoding="utf-8").split("\n")
    parsed = []
    for number, line in enumerate(lines):
        try:
            parsed.append(json.loads(line))
        except ValueError:
            assert number == len(lines) - 1, f"line {number + 1} of {path} is not JSON: {line!r}"
    return parsed


def test_a_purge_killed_midway_reports_only_real_deletions_and_a_rerun_finishes(
    slow_emulator: AssemblyAIEmulator, tmp_path: Path
) -> None:
    emu = slow_emulator
    ids = set(emu.seed(TRANSCRIPTS, "us", statuses=["completed", "error"], span=timedelta(days=10)))
    audit = tmp_path / "audit" / "purge.jsonl"
    script = tmp_path / "purge.py"
    script.write_text(textwrap.dedent(PURGE_SCRIPT), encoding="utf-8")

    child = subprocess.Popen(
        [sys.executable, str(script), audit.as_uri()],
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(
            lambda: (
                child.poll() is not None
                or (len(emu.ids("us", deleted=True)) >= 20 and audit.exists() and audit.stat().st_size > 0)
            ),
            "the purge to delete some transcripts and flush its audit",
        )
        assert child.poll() is None, child.communicate()[0].decode(errors="replace")[-3000:]
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL

    killed_deleted = settled(emu)
    assert 0 < killed_deleted < TRANSCRIPTS  # killed midway
    first = audit_lines(audit)
    claimed = {line["transcript_id"] for line in first if line["outcome"] == "deleted"}
    assert claimed  # the audit did record deletions before the kill
    assert all(emu.is_deleted("us", tid) for tid in claimed)  # every claim is true
    assert {line["outcome"] for line in first} == {"deleted"}
    assert len(claimed) == len(first) <= killed_deleted

    emu.configure(latency_ms=0)
    summary = PurgeTranscriptsOperator(
        task_id="purge", older_than=timedelta(0), concurrency=8, audit_path=audit.as_uri()
    ).execute({})

    assert summary["scan_complete"] is True
    assert summary["deleted"] == TRANSCRIPTS - killed_deleted
    assert summary["already_deleted"] == killed_deleted
    assert (summary["failed"], summary["not_found"]) == (0, 0)
    assert summary["matched"] == TRANSCRIPTS
    assert set(emu.ids("us", deleted=True)) == ids
    second = audit_lines(Path(summary["audit_path"].removeprefix("file://")))
    assert summary["audit_path"].endswith("purge-1.jsonl")  # the killed run's audit is kept
    assert claimed <= {line["transcript_id"] for line in second if line["outcome"] == "already_deleted"}
    assert not claimed & set(summary["deleted_ids"])  # nothing is counted deleted twice
