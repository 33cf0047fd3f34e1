"""
read_audit(): merges every part of every attempt into one record per transcript outcome, and finds
an edited, removed or reordered line or part (file://, memory:// and S3 through moto's server).

The audits are written by the real AuditWriter; a killed attempt is one whose flusher stops before
its last lines are stored, as a SIGKILL would (tests/reliability/test_purge_sigkill.py kills real
processes).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_assemblyai.audit import AuditReport, audit_folder, read_audit
from airflow_provider_assemblyai.purge import AuditWriter, Outcome
from tests.audit_stores import s3_uri

FIELDS = {"dag_id": "retention", "task_id": "purge", "run_id": "scheduled__2024-06-01"}


def writer(uri: str, try_number: int) -> AuditWriter:
    return AuditWriter(uri, {**FIELDS, "try_number": try_number}, region="us")


async def delete(audit: AuditWriter, transcript_id: str, *, stored: bool = True) -> None:
    """Announce, wait until the intent is stored (as the engine does before a DELETE), record it."""
    await audit.wait_stored(audit.intent(transcript_id, created=None, status="completed"))
    audit.outcome(transcript_id, Outcome.DELETED, http_status=200, status="completed")
    if stored:
        await audit.wait_stored(audit.intent("flush-marker", created=None, status=None))
        audit.withdrawn("flush-marker", "test: forces a new part")


async def die(audit: AuditWriter) -> None:
    """Stop as a SIGKILL would: whatever is not stored yet is lost, nothing is closed."""
    assert audit._flusher is not None
    audit._flusher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await audit._flusher


async def killed_then_rerun(uri: str) -> tuple[AuditWriter, AuditWriter]:
    """
    Attempt 1 deletes a and b (stored), announces c and d and deletes c, then dies before storing
    c's outcome. Attempt 2 finds c and d open, settles them (c deleted, d interrupted), deletes d.
    """
    first = writer(uri, 1)
    await first.open()
    await delete(first, "a")
    await delete(first, "b")
    c = first.intent("c", created=None, status="completed")
    first.intent("d", created=None, status="completed")
    await first.wait_stored(c)
    first.outcome("c", Outcome.DELETED, http_status=200)  # never stored
    await die(first)

    second = writer(uri, 2)
    await second.open()
    assert sorted(i.transcript_id for i in second.open_intents) == ["c", "d"]
    for intent in second.open_intents:
        outcome = "deleted" if intent.transcript_id == "c" else "interrupted"
        second.recovered(intent, outcome, http_status=200, status="completed")
    await delete(second, "d", stored=False)
    await second.close({"deleted": 1})
    return first, second


@pytest.fixture(params=["file", "memory", "s3"])
def audit_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An audit_path on each backend, in the form users give it (``.../run.jsonl``)."""
    if request.param == "file":
        return f"{tmp_path.as_uri()}/audit/run.jsonl"
    if request.param == "memory":
        return f"{request.getfixturevalue('memory_root')}/run.jsonl"
    return s3_uri(request.getfixturevalue("s3_bucket"), "purges/run.jsonl")


async def test_one_record_per_transcript_outcome_across_parts_and_attempts(audit_uri: str) -> None:
    first, second = await killed_then_rerun(audit_uri)

    report = read_audit(audit_uri, anchors=[second.anchor])

    assert report.problems == []
    assert report.open_intents == []
    got = [(r.transcript_id, r.outcome, r.attempt, r.try_number, r.recovered_by) for r in report.records]
    assert got == [
        ("a", "deleted", first.attempt, 1, None),
        ("b", "deleted", first.attempt, 1, None),
        ("c", "deleted", first.attempt, 1, second.attempt),  # deleted by the killed attempt
        ("d", "interrupted", first.attempt, 1, second.attempt),  # announced, never deleted by it
        ("d", "deleted", second.attempt, 2, None),
    ]
    assert report.ids("deleted") == {"a", "b", "c", "d"}
    assert [(a.name, a.try_number, a.finished) for a in report.attempts] == [
        (first.attempt, 1, False),
        (second.attempt, 2, True),
    ]
    c = report.records[2]
    assert c.intent_time is not None
    assert c.time is not None
    assert c.intent_time <= c.time
    assert {(r.dag_id, r.run_id) for r in report.records} == {(FIELDS["dag_id"], FIELDS["run_id"])}
    assert first.parts >= 3  # the records really span several parts
    json.dumps(report.to_dict())


async def test_the_killed_attempts_lost_lines_are_the_only_gap_and_an_open_intent_is_reported(
    audit_uri: str,
) -> None:
    audit = writer(audit_uri, 1)
    await audit.open()
    await delete(audit, "a")
    audit.intent("b", created=None, status="completed")  # stored? not yet: nobody waits for it
    await delete(audit, "c")  # stores b's intent too
    await die(audit)

    report = read_audit(audit_uri)

    assert report.ok, report.problems
    assert [r.transcript_id for r in report.records] == ["a", "c"]
    assert [(i.transcript_id, i.attempt, i.try_number) for i in report.open_intents] == [
        ("b", audit.attempt, 1)
    ]


async def test_any_form_of_the_path_reads_the_whole_audit(tmp_path: Path) -> None:
    uri = f"{tmp_path.as_uri()}/audit/2024-06-01.jsonl"
    first, second = await killed_then_rerun(uri)
    assert audit_folder(uri) == f"{tmp_path.as_uri()}/audit/2024-06-01"
    assert (tmp_path / "audit" / "2024-06-01" / str(first.attempt) / "part-000001.jsonl").is_file()

    forms = [uri, audit_folder(uri), audit_folder(uri) + "/", str(second.path)]
    reports = [read_audit(form) for form in forms]

    assert {len(report.records) for report in reports} == {5}
    assert all(report.ok for report in reports)


def test_a_missing_audit_is_empty_and_intact(tmp_path: Path) -> None:
    report = read_audit(f"{tmp_path.as_uri()}/nothing-here.jsonl")
    assert (report.records, report.attempts, report.problems) == ([], [], [])


# -- tamper evidence -------------------------------------------------------------------------


def _parts(root: Path) -> list[Path]:
    return sorted(root.rglob("part-*.jsonl"))


def _edit_line(part: Path, number: int, change: Callable[[dict[str, Any]], None]) -> None:
    lines = part.read_bytes().split(b"\n")
    line = json.loads(lines[number - 1])
    change(line)
    lines[number - 1] = json.dumps(line, separators=(",", ":")).encode()
    part.write_bytes(b"\n".join(lines))


def _swap_lines(part: Path, first: int, second: int) -> None:
    lines = part.read_bytes().split(b"\n")
    lines[first - 1], lines[second - 1] = lines[second - 1], lines[first - 1]
    part.write_bytes(b"\n".join(lines))


def _remove_line(part: Path, number: int) -> None:
    lines = part.read_bytes().split(b"\n")
    del lines[number - 1]
    part.write_bytes(b"\n".join(lines))


def _line_of(part: Path, transcript_id: str, kind: str = "outcome") -> int:
    for number, raw in enumerate(part.read_bytes().split(b"\n")[:-1], start=1):
        line = json.loads(raw)
        if line.get("transcript_id") == transcript_id and line["type"] == kind:
            return number
    raise AssertionError(f"no {kind} line for {transcript_id} in {part}")


def _part_with(root: Path, transcript_id: str, kind: str = "outcome") -> Path:
    for part in _parts(root):
        with contextlib.suppress(AssertionError):
            _line_of(part, transcript_id, kind)
            return part
    raise AssertionError(f"no part holds the {kind} of {transcript_id}")


def _flip_outcome(root: Path) -> None:
    """A failed deletion rewritten as deleted, in the middle of a part."""
    part = _part_with(root, "a")
    _edit_line(part, _line_of(part, "a"), lambda line: line.update(outcome="failed"))


def _forge_link(root: Path) -> None:
    """An edited line whose own link is kept intact: the line after it no longer links to it."""
    part = _part_with(root, "a", "intent")
    _edit_line(part, _line_of(part, "a", "intent"), lambda line: line.update(transcript_id="z"))


def _edit_end_line(root: Path) -> None:
    """The last line of the killed attempt (vouched for only by the next attempt's first part)."""
    part = [p for p in _parts(root) if "try1" in str(p)][-1]
    count = len(part.read_bytes().split(b"\n")) - 1
    _edit_line(part, count, lambda line: line.update(time="2000-01-01T00:00:00.000+00:00"))


def _remove_outcome(root: Path) -> None:
    part = _part_with(root, "b")
    _remove_line(part, _line_of(part, "b"))


def _reorder_lines(root: Path) -> None:
    part = _part_with(root, "a")
    number = _line_of(part, "a")
    _swap_lines(part, number, number - 1)


def _remove_middle_part(root: Path) -> None:
    _parts(root)[1].unlink()


def _swap_parts(root: Path) -> None:
    second, third = _parts(root)[1:3]
    a, b = second.read_bytes(), third.read_bytes()
    second.write_bytes(b)
    third.write_bytes(a)


def _remove_first_attempt(root: Path) -> None:
    for part in _parts(root):
        if "try1" in str(part):
            part.unlink()


def _foreign_object(root: Path) -> None:
    (root / "notes.txt").write_text("hello")


TAMPERING: dict[str, tuple[Callable[[Path], None], str]] = {
    "an outcome edited": (_flip_outcome, "does not link to line"),
    "an edited line that keeps its own link": (_forge_link, "was changed after"),
    "the killed attempt's last line edited": (_edit_end_line, "was changed after"),
    "a line removed": (_remove_outcome, "does not link to line"),
    "two lines reordered": (_reorder_lines, "does not link to line"),
    "a part removed": (_remove_middle_part, "which is missing"),
    "two parts swapped": (_swap_parts, "renamed, moved or swapped"),
    "an attempt removed": (_remove_first_attempt, "which is missing"),
    "an object added": (_foreign_object, "not part of the audit layout"),
}


@pytest.mark.parametrize("tampering", list(TAMPERING))
async def test_tampering_is_reported(tmp_path: Path, tampering: str) -> None:
    uri = f"{tmp_path.as_uri()}/audit/run.jsonl"
    await killed_then_rerun(uri)
    root = tmp_path / "audit" / "run"
    assert read_audit(uri).ok  # intact before
    change, expected = TAMPERING[tampering]

    change(root)

    report = read_audit(uri)
    assert not report.ok
    assert any(expected in problem for problem in report.problems), report.problems


async def test_removing_or_editing_the_newest_part_is_caught_by_its_anchor(tmp_path: Path) -> None:
    uri = f"{tmp_path.as_uri()}/audit/run.jsonl"
    _, second = await killed_then_rerun(uri)
    newest = _parts(tmp_path / "audit" / "run")[-1]
    assert second.anchor is not None
    assert second.anchor["part"].endswith(newest.name)
    original = newest.read_bytes()

    newest.write_bytes(original.replace(b'"deleted":1', b'"deleted":2'))
    edited = read_audit(uri, anchors=[second.anchor])
    newest.unlink()
    removed = read_audit(uri, anchors=[second.anchor])

    assert read_audit(uri).ok  # without the anchor, a removed newest part looks like a killed run
    assert any("SHA-256 differs" in problem for problem in edited.problems), edited.problems
    assert any("the part is missing" in problem for problem in removed.problems), removed.problems


async def test_a_part_cut_short_by_a_crash_is_a_note_not_tampering(tmp_path: Path) -> None:
    """A store without atomic writes may keep half a part; the complete lines before the cut count."""
    uri = f"{tmp_path.as_uri()}/audit/run.jsonl"
    audit = writer(uri, 1)
    await audit.open()
    await delete(audit, "a")
    await delete(audit, "b", stored=False)
    await audit.close(None)
    newest = _parts(tmp_path / "audit" / "run")[-1]
    data = newest.read_bytes()
    newest.write_bytes(data[: data.rindex(b'"transcript_id":"b"') + 10])  # cut inside b's outcome
    (newest.parent / f".{newest.name}.1a2b3c4d.tmp").write_bytes(data[:20])  # a temp file's remains

    report: AuditReport = read_audit(uri)

    assert report.ok, report.problems
    assert [r.transcript_id for r in report.records] == ["a"]
    assert any("cut short" in note for note in report.notes)
    assert any("temporary file" in note for note in report.notes)


def test_the_reader_is_cheap_to_import_and_dag_files_do_not_load_it() -> None:
    code = (
        "import sys\n"
        "import airflow_provider_assemblyai.audit\n"
        "heavy = [m for m in ('airflow', 'pydantic', 'httpx', 'fsspec') if m in sys.modules]\n"
        "import airflow_provider_assemblyai.operators.assemblyai\n"
        "print(heavy, 'airflow_provider_assemblyai.purge' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[] False"
