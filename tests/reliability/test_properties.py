"""
Property-based tests (hypothesis): transcript id validation, the request path of an accepted id, and
parsing transcripts and list pages with extra and missing optional fields.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import respx
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from airflow_provider_assemblyai.exceptions import AssemblyAIError
from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook
from airflow_provider_assemblyai.models import (
    Transcript,
    TranscriptList,
    TranscriptStatus,
    validate_transcript_id,
)
from airflow_provider_assemblyai.validation import MAX_TRANSCRIPT_ID_LENGTH
from tests.api_bodies import US

ALPHABET = string.ascii_letters + string.digits + "-_"
valid_ids = st.text(alphabet=ALPHABET, min_size=1, max_size=MAX_TRANSCRIPT_ID_LENGTH)
foreign_chars = st.characters(blacklist_characters=ALPHABET)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
statuses = st.sampled_from([status.value for status in TranscriptStatus])
PROPERTY_SETTINGS = settings(
    max_examples=80, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def hook() -> Iterator[AssemblyAIHook]:
    """A hook on a connection to the real US host (respx answers; nothing leaves the process)."""
    mp = pytest.MonkeyPatch()
    mp.setenv(
        "AIRFLOW_CONN_ASSEMBLYAI_DEFAULT",
        json.dumps({"conn_type": "assemblyai", "password": "prop-key", "extra": {"max_retries": 0}}),
    )
    hook = AssemblyAIHook()
    assert hook.base_url == US
    yield hook
    hook.close()
    mp.undo()


# -- id validation ---------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(transcript_id=valid_ids)
def test_every_id_of_the_alphabet_up_to_128_is_accepted_and_addresses_exactly_its_path(
    hook: AssemblyAIHook, transcript_id: str
) -> None:
    assume(transcript_id.lower() not in ("none", "null"))  # what a template renders for no value
    assert validate_transcript_id(transcript_id) == transcript_id
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": transcript_id, "status": "completed"})

    with respx.mock(assert_all_mocked=True) as api:
        api.route(host="api.assemblyai.com").mock(side_effect=answer)
        assert hook.get_transcript(transcript_id).id == transcript_id
    assert len(seen) == 1
    assert seen[0].url.raw_path == f"/v2/transcript/{transcript_id}".encode()
    assert seen[0].url.path == f"/v2/transcript/{transcript_id}"
    assert seen[0].url.host == "api.assemblyai.com"


@PROPERTY_SETTINGS
@given(prefix=st.text(alphabet=ALPHABET, max_size=60), bad=foreign_chars, suffix=st.text(max_size=60))
def test_any_character_outside_the_alphabet_is_refused_before_any_request(
    hook: AssemblyAIHook, prefix: str, bad: str, suffix: str
) -> None:
    value = prefix + bad + suffix
    assume(not set(value.strip()) <= set(ALPHABET))  # surrounding whitespace alone is stripped
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as api:
        anything = api.route().respond(200, json={"id": "x", "status": "completed"})
        for call in (validate_transcript_id, hook.get_transcript, hook.delete_transcript):
            with pytest.raises(ValueError, match="transcript_id") as info:
                call(value)
            assert repr(value)[:40] in str(info.value) or "characters long" in str(info.value)
        assert not anything.called


@PROPERTY_SETTINGS
@given(value=st.text(alphabet=ALPHABET, min_size=MAX_TRANSCRIPT_ID_LENGTH + 1, max_size=2000))
def test_ids_longer_than_128_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match=f"{len(value)} characters long; expected at most 128"):
        validate_transcript_id(value)


@PROPERTY_SETTINGS
@given(
    value=st.none()
    | st.integers()
    | st.floats()
    | st.binary()
    | st.lists(valid_ids)
    | st.dictionaries(valid_ids, valid_ids)
)
def test_non_strings_are_refused(value: object) -> None:
    expected = (
        "is None: there is no transcript id"
        if value is None
        else f"must be a string, got {type(value).__name__}"
    )
    with pytest.raises(ValueError, match=expected):
        validate_transcript_id(value)


@PROPERTY_SETTINGS
@given(transcript_id=valid_ids, before=st.text(" \t\n\r", max_size=3), after=st.text(" \t\n\r", max_size=3))
def test_surrounding_whitespace_is_stripped_then_the_id_validated(
    transcript_id: str, before: str, after: str
) -> None:
    assume(transcript_id.lower() not in ("none", "null"))
    assert validate_transcript_id(before + transcript_id + after) == transcript_id


@pytest.mark.parametrize("rendered", ["None", "none", "null", "NULL", "", "   ", " None\n"])
def test_what_a_template_renders_for_nothing_is_refused(rendered: str) -> None:
    with pytest.raises(
        ValueError, match="there is no transcript id, most likely because an upstream task returned nothing"
    ):
        validate_transcript_id(rendered)


# -- parsing ---------------------------------------------------------------------------------------

OPTIONAL_TRANSCRIPT_FIELDS = {
    "audio_url": st.none() | st.text(max_size=30),
    "text": st.none() | st.text(max_size=30),
    "error": st.none() | st.text(max_size=30),
    "audio_duration": st.none() | st.integers(0, 10_000) | st.floats(0, 1e4),
    "confidence": st.none() | st.floats(0, 1),
    "language_code": st.none() | st.sampled_from(["en", "en_us", "de"]),
    "punctuate": st.none() | st.booleans(),
    "speaker_labels": st.none() | st.booleans(),
    "words": st.none() | st.lists(st.dictionaries(st.sampled_from(["text", "start", "end"]), json_values)),
    "webhook_status_code": st.none() | st.integers(100, 599),
}
unknown_fields = st.dictionaries(
    st.text(alphabet=string.ascii_lowercase + "_", min_size=3, max_size=12).map(lambda name: f"x_{name}"),
    json_values,
    max_size=4,
)


@st.composite
def transcript_bodies(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {"id": draw(valid_ids), "status": draw(statuses)}
    chosen = draw(st.lists(st.sampled_from(sorted(OPTIONAL_TRANSCRIPT_FIELDS)), unique=True))
    body.update({name: draw(OPTIONAL_TRANSCRIPT_FIELDS[name]) for name in chosen})
    body.update(draw(unknown_fields))
    return body


@PROPERTY_SETTINGS
@given(body=transcript_bodies())
def test_transcripts_keep_unknown_fields_and_raw_round_trips(body: dict[str, Any]) -> None:
    wire = json.loads(json.dumps(body))  # exactly what would arrive over HTTP
    transcript = Transcript.from_api(wire)

    assert transcript.raw == body
    assert json.loads(json.dumps(transcript.raw)) == body
    assert transcript.id == body["id"]
    assert transcript.status.value == body["status"]
    for name in body:
        if name.startswith("x_"):
            assert (transcript.model_extra or {})[name] == body[name]
    assert transcript.is_deleted == (
        body.get("text") == "Deleted by user." or str(body.get("audio_url") or "").endswith("deleted_by_user")
    )


@st.composite
def list_pages(draw: st.DrawFn) -> dict[str, Any]:
    items = []
    for transcript_id in draw(st.lists(valid_ids, max_size=5, unique=True)):
        item: dict[str, Any] = {
            "id": transcript_id,
            "status": draw(statuses),
            "created": draw(st.sampled_from(["2024-03-11T21:29:59.936851", "2024-03-11T21:29:59Z"])),
        }
        for name, values in {
            "completed": st.none() | st.just("2024-03-11T21:30:07.314223"),
            "resource_url": st.none() | st.just(f"{US}/v2/transcript/{transcript_id}"),
            "audio_url": st.none()
            | st.sampled_from(["https://a/b.mp3", "http://deleted_by_user", "deleted_by_user"]),
            "error": st.none() | st.just("") | st.text(max_size=10),
            "region": st.sampled_from(["us", "eu"]),
        }.items():
            if draw(st.booleans()):
                item[name] = draw(values)
        item.update(draw(unknown_fields))
        items.append(item)
    details: dict[str, Any] = {"limit": 200, "result_count": len(items)}
    for name in ("current_url", "prev_url", "next_url"):
        if draw(st.booleans()):
            details[name] = None
    details.update(draw(unknown_fields))
    return {"page_details": details, "transcripts": items, **draw(unknown_fields)}


@settings(PROPERTY_SETTINGS, max_examples=40)
@given(page=list_pages())
def test_list_pages_parse_with_extra_and_missing_optional_fields(page: dict[str, Any]) -> None:
    parsed = TranscriptList.model_validate(json.loads(json.dumps(page)))

    assert [item.id for item in parsed.transcripts] == [item["id"] for item in page["transcripts"]]
    for item, raw in zip(parsed.transcripts, page["transcripts"], strict=True):
        assert item.created.utcoffset() is not None
        assert item.created.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
        assert item.error == (raw.get("error") or None)
        assert item.is_deleted == str(raw.get("audio_url") or "").endswith("deleted_by_user")
        for name, value in raw.items():
            if name.startswith("x_") or name == "region":
                assert (item.model_extra or {})[name] == value
    assert parsed.page_details.prev_url is None


@PROPERTY_SETTINGS
@given(
    body=st.dictionaries(st.sampled_from(["id", "status", "text", "audio_url", "words"]), json_values)
    | transcript_bodies(),
    method=st.sampled_from(["GET", "DELETE"]),
)
@example(
    body={"id": "NULL", "status": "queued"},
    method="DELETE",
).via("discovered failure")
def test_the_hook_parses_or_raises_a_clear_error_never_anything_else(
    hook: AssemblyAIHook, body: dict[str, Any], method: str
) -> None:
    with respx.mock(assert_all_mocked=True) as api:
        api.route(method=method, url=f"{US}/v2/transcript/abc").respond(200, json=body)
        call: Callable[[str], Transcript] = hook.get_transcript if method == "GET" else hook.delete_transcript
        try:
            transcript = call("abc")
        except AssemblyAIError as error:
            message = str(error)
            assert "malformed transcript" in message or "without its deleted shape" in message
            problems = message.split("(", 1)[1] if "malformed transcript" in message else ""
            if isinstance(body.get("id"), str):
                assert not problems.startswith("id:")  # the error names the field really at fault
            status = body.get("status")
            if isinstance(status, str) and status in {known.value for known in TranscriptStatus}:
                assert "status:" not in problems
        else:
            assert transcript.raw == body
            assert method == "GET" or transcript.is_deleted
