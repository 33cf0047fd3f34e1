"""Models: statuses, lenient parsing of real API shapes, the spec's own examples, and id validation."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_assemblyai.models import (
    PageDetails,
    Transcript,
    TranscriptList,
    TranscriptListItem,
    TranscriptStatus,
    validate_transcript_id,
)

EXAMPLES_FILE = Path(__file__).parent / "data" / "openapi-examples.json"
SPEC_FILE = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference" / "assemblyai-openapi.yml"
EXAMPLES: dict[str, Any] = json.loads(EXAMPLES_FILE.read_text(encoding="utf-8"))


@cache
def _spec() -> dict[str, Any]:
    """The OpenAPI spec, parsed once (it is large)."""
    yaml = pytest.importorskip("yaml")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(SPEC_FILE.read_text(encoding="utf-8"), Loader=loader)  # type: ignore[no-any-return]


DELETED_BODY = {
    "id": "5551722-f677-48a6-9287-39c0aafd9ac1",
    "status": "completed",
    "text": "Deleted by user.",
    "audio_url": "http://deleted_by_user",
    "webhook_url": "http://deleted_by_user",
    "words": None,
    "utterances": None,
    "confidence": None,
    "audio_duration": 281,
}


# -- TranscriptStatus ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "terminal"),
    [("queued", False), ("processing", False), ("completed", True), ("error", True)],
)
def test_status_is_terminal(status: str, terminal: bool) -> None:
    assert TranscriptStatus(status).is_terminal is terminal


def test_status_is_a_str_enum_matching_the_spec() -> None:
    assert TranscriptStatus.COMPLETED == "completed"
    if not SPEC_FILE.exists():
        pytest.skip(f"spec not present at {SPEC_FILE}")
    assert {s.value for s in TranscriptStatus} == set(
        _spec()["components"]["schemas"]["TranscriptStatus"]["enum"]
    )


def test_parse_many_accepts_one_or_many_and_dedupes() -> None:
    assert TranscriptStatus.parse_many("error", argument="statuses") == (TranscriptStatus.ERROR,)
    assert TranscriptStatus.parse_many(
        ["completed", TranscriptStatus.ERROR, "completed"], argument="statuses"
    ) == (TranscriptStatus.COMPLETED, TranscriptStatus.ERROR)


@pytest.mark.parametrize(("value", "named"), [("done", "'done'"), (["completed", "Queued"], "'Queued'")])
def test_parse_many_names_the_argument_and_the_bad_value(value: object, named: str) -> None:
    with pytest.raises(ValueError, match="statuses") as info:
        TranscriptStatus.parse_many(value, argument="statuses")
    assert named in str(info.value)
    assert "completed" in str(info.value)  # lists the allowed values


@pytest.mark.parametrize("value", [[], None, 3, {"completed": 1}])
def test_parse_many_rejects_empty_and_non_collections(value: object) -> None:
    with pytest.raises(ValueError, match="statuses must be a non-empty list"):
        TranscriptStatus.parse_many(value, argument="statuses")


# -- Transcript ------------------------------------------------------------------------------------


def test_transcript_keeps_unknown_fields_and_raw_is_verbatim() -> None:
    body = {
        "id": "abc",
        "status": "completed",
        "text": "hello",
        "brand_new_field": {"nested": [1, 2]},
        "audio_duration": 12,
    }
    original = copy.deepcopy(body)
    transcript = Transcript.from_api(body)
    assert transcript.raw == original
    assert list(transcript.raw) == list(original)  # same keys, same order, nothing added
    assert transcript.model_extra == {"brand_new_field": {"nested": [1, 2]}}
    assert transcript.status is TranscriptStatus.COMPLETED
    assert transcript.audio_duration == 12


def test_transcript_raw_without_from_api_has_no_added_defaults() -> None:
    transcript = Transcript.model_validate({"id": "abc", "status": "queued", "extra_field": 1})
    assert transcript.raw == {"id": "abc", "status": "queued", "extra_field": 1}


def test_transcript_deleted_shape() -> None:
    transcript = Transcript.from_api(DELETED_BODY)
    assert transcript.is_deleted
    assert transcript.audio_duration == 281  # kept for billing


@pytest.mark.parametrize(
    "changes",
    [
        {"text": "Deleted by user.", "audio_url": "https://x/a.mp3"},
        {"text": None, "audio_url": "deleted_by_user"},  # no scheme, seen in real list items
    ],
)
def test_transcript_deleted_by_either_marker(changes: dict[str, Any]) -> None:
    assert Transcript.from_api({"id": "a", "status": "completed", **changes}).is_deleted


def test_transcript_not_deleted() -> None:
    body = {"id": "a", "status": "completed", "text": "Hi.", "audio_url": "https://x/a.mp3"}
    assert not Transcript.from_api(body).is_deleted
    assert not Transcript.from_api({"id": "a", "status": "queued"}).is_deleted


@pytest.mark.parametrize(
    "body", [{"status": "completed"}, {"id": "a"}, {"id": "a", "status": "finished"}, {"id": 5, "status": 1}]
)
def test_transcript_requires_id_and_a_known_status(body: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="validation error"):
        Transcript.from_api(body)


# -- TranscriptListItem --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "created",
    ["2024-03-11T21:29:59.936851", "2024-03-11T21:29:59.936851Z", "2024-03-11T21:29:59.936851+00:00"],
)
def test_list_item_timestamps_are_utc_aware(created: str) -> None:
    item = TranscriptListItem.model_validate(
        {"id": "a", "status": "completed", "created": created, "completed": created}
    )
    expected = datetime(2024, 3, 11, 21, 29, 59, 936851, tzinfo=timezone.utc)
    assert item.created == expected
    assert item.created.utcoffset() is not None
    assert item.completed == expected


def test_list_item_other_offset_is_kept_as_the_same_instant() -> None:
    body = {"id": "a", "status": "queued", "created": "2024-03-11T23:00:00+02:00"}
    item = TranscriptListItem.model_validate(body)
    assert item.created == datetime(2024, 3, 11, 21, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("error", ["", None])
def test_list_item_empty_error_is_none(error: str | None) -> None:
    item = TranscriptListItem.model_validate(
        {"id": "a", "status": "completed", "created": "2024-03-11T21:29:59", "error": error}
    )
    assert item.error is None


def test_list_item_is_lenient_about_real_api_extras() -> None:
    item = TranscriptListItem.model_validate(
        {
            "id": "a",
            "status": "completed",
            "created": "2024-03-11T21:29:59Z",
            "completed": None,
            "audio_url": "deleted_by_user",
            "region": "eu",
            "resource_url": "https://api.eu.assemblyai.com/v2/transcript/a",
        }
    )
    assert item.model_extra == {"region": "eu"}
    assert item.is_deleted
    assert item.completed is None


# -- the spec's own examples -----------------------------------------------------------------------


def test_spec_transcript_example_parses() -> None:
    example = EXAMPLES["Transcript"]
    transcript = Transcript.from_api(example)
    assert transcript.id == example["id"]
    assert transcript.status is TranscriptStatus(example["status"])
    assert transcript.raw == example
    assert not transcript.is_deleted
    assert transcript.words
    assert transcript.words[0] == example["words"][0]


def test_spec_transcript_list_example_parses() -> None:
    example = EXAMPLES["TranscriptList"]
    page = TranscriptList.model_validate(example)
    assert [t.id for t in page.transcripts] == [t["id"] for t in example["transcripts"]]
    assert page.page_details.prev_url == example["page_details"]["prev_url"]
    assert all(t.created.tzinfo is not None for t in page.transcripts)
    deleted = [t.is_deleted for t in page.transcripts]
    assert deleted == [t["audio_url"] == "http://deleted_by_user" for t in example["transcripts"]]
    assert page.transcripts[1].status is TranscriptStatus.ERROR
    assert page.transcripts[1].error


def test_spec_list_item_and_page_details_examples_parse() -> None:
    item = TranscriptListItem.model_validate(EXAMPLES["TranscriptListItem"])
    assert item.id == EXAMPLES["TranscriptListItem"]["id"]
    assert item.created.tzinfo is timezone.utc
    details = PageDetails.model_validate(EXAMPLES["PageDetails"])
    assert details.limit == details.result_count == 10
    assert details.prev_url is not None
    assert "before_id=" in details.prev_url


def test_vendored_examples_match_the_spec() -> None:
    if not SPEC_FILE.exists():
        pytest.skip(f"spec not present at {SPEC_FILE}; the vendored examples are used as they are")
    from tests.data.generate_openapi_examples import SCHEMAS

    schemas = _spec()["components"]["schemas"]
    assert {name: schemas[name]["example"] for name in SCHEMAS} == EXAMPLES, (
        "tests/data/openapi-examples.json is stale: run tests/data/generate_openapi_examples.py"
    )


# -- transcript id validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["abc", "5551722-f677-48a6-9287-39c0aafd9ac1", "A_b-9", "x" * 128, "62npeahu2b-a8ea-4112"]
)
def test_valid_transcript_ids(value: str) -> None:
    assert validate_transcript_id(value) == value


INVALID_IDS: list[object] = [
    "",
    "a/b",
    "../v2/transcript",
    "..",
    "abc?limit=1",
    "abc#frag",
    "abc%2Fdef",
    "abc def",
    "a\nbc",  # inner whitespace (surrounding whitespace is stripped: see below)
    "a\tbc",
    "None",  # what a template renders for an upstream task that returned nothing
    " null ",
    "\u0430bc",  # Cyrillic small a, a look-alike of the Latin one
    "ab\u200bc",  # zero-width space
    "\uff11\uff12\uff13",  # full-width digits
    "x" * 129,
    "x" * 10_000,
    123,
    None,
    ["abc"],
    {"id": "abc"},
    b"abc",
    12.5,
    True,
]


@pytest.mark.parametrize("value", INVALID_IDS, ids=lambda v: repr(v)[:30])
def test_invalid_transcript_ids_raise_value_error_naming_the_value(value: object) -> None:
    with pytest.raises(ValueError, match="transcript_id") as info:
        validate_transcript_id(value)
    message = str(info.value)
    if isinstance(value, str) and value:
        assert repr(value)[:40] in message
    elif value is None:
        assert "transcript_id is None: there is no transcript id" in message
    elif not isinstance(value, str):
        assert type(value).__name__ in message
    assert len(message) < 300  # a 10,000-character id is shortened, not echoed whole


@pytest.mark.parametrize("padded", [" abc", "abc\n", "\tabc\r\n "])
def test_surrounding_whitespace_is_stripped(padded: str) -> None:
    assert validate_transcript_id(padded) == "abc"


def test_invalid_id_message_says_what_is_expected() -> None:
    with pytest.raises(ValueError, match="expected only ASCII letters, digits, '-' and '_'"):
        validate_transcript_id("a/b")
    with pytest.raises(ValueError, match="expected at most 128"):
        validate_transcript_id("x" * 129)
