"""Endpoint behaviour over real HTTP: auth, create/get/delete, errors, lifecycle, regions."""

from __future__ import annotations

import httpx
import pytest

from airflow_provider_assemblyai.testing import AssemblyAIEmulator
from tests.testing.conftest import Validate
from tests.testing.helpers import KEY, LOOKUP_ERROR, tr_url

AUTH_ERROR = {"error": "Authentication error, API token missing/invalid"}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "wrong"}, {"Authorization": f"Bearer {KEY}"}, {"Authorization": ""}],
    ids=["missing", "wrong", "bearer", "empty"],
)
def test_auth_rejects_missing_or_invalid_keys(
    emu: AssemblyAIEmulator, headers: dict[str, str], validate: Validate
) -> None:
    tid = emu.create_transcript("us")
    with httpx.Client(headers=headers, timeout=5) as client:
        for method, target in (
            ("GET", tr_url(emu)),
            ("GET", tr_url(emu, "us", tid)),
            ("DELETE", tr_url(emu, "us", tid)),
        ):
            resp = client.request(method, target)
            assert resp.status_code == 401
            assert resp.json() == AUTH_ERROR
            validate("Error", resp.json())
    assert not emu.is_deleted("us", tid)
    assert all(not r.key_matched for r in emu.requests)


def test_any_configured_key_is_accepted(emu: AssemblyAIEmulator) -> None:
    resp = httpx.get(tr_url(emu), headers={"Authorization": "second-key"})
    assert resp.status_code == 200


def test_create_get_delete_and_delete_again(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    created = http.post(tr_url(emu), json={"audio_url": "https://example.org/a.mp3", "speaker_labels": True})
    assert created.status_code == 200
    body = created.json()
    tid = body["id"]
    assert body["status"] == "queued"
    assert body["audio_url"] == "https://example.org/a.mp3"
    assert body["speaker_labels"] is True
    assert len(tid) == 36
    assert tid[14] == "4"

    emu.advance(emu.state.config.queued_seconds + emu.state.config.processing_seconds)
    done = http.get(tr_url(emu, "us", tid)).json()
    assert done["status"] == "completed"
    assert done["text"]
    assert done["words"]
    assert done["utterances"]
    assert 0 <= done["confidence"] <= 1
    assert isinstance(done["audio_duration"], int)

    deleted = http.delete(tr_url(emu, "us", tid))
    assert deleted.status_code == 200
    gone = deleted.json()
    assert gone["id"] == tid
    assert gone["status"] == "completed"
    assert gone["text"] == "Deleted by user."
    assert gone["audio_url"] == "http://deleted_by_user"
    assert gone["webhook_url"] == "http://deleted_by_user"
    assert gone["words"] is None
    assert gone["utterances"] is None
    assert gone["confidence"] is None
    assert gone["audio_duration"] == done["audio_duration"]
    assert emu.is_deleted("us", tid)

    assert http.get(tr_url(emu, "us", tid)).json() == gone
    again = http.delete(tr_url(emu, "us", tid))
    assert again.status_code == 200
    assert again.json() == gone
    assert emu.counters["deleted"] == 1


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_unknown_id_is_a_400_lookup_error(emu: AssemblyAIEmulator, http: httpx.Client, method: str) -> None:
    resp = http.request(method, tr_url(emu, "us", "5551dd5c-0bd1-4a3f-9fd2-3e4d8f0a5b1c"))
    assert resp.status_code == 400
    assert resp.json() == LOOKUP_ERROR


@pytest.mark.parametrize(
    "path",
    ["/", "/v2", "/v2/transcripts", "/v1/transcript", "/v2/transcript/abc/sentences", "/v2/transcript/"],
)
def test_unknown_path_is_404(
    emu: AssemblyAIEmulator, http: httpx.Client, path: str, validate: Validate
) -> None:
    resp = http.get(emu.base_url("us") + path)
    assert resp.status_code == 404
    assert resp.json() == {"error": "Not found"}
    validate("Error", resp.json())


@pytest.mark.parametrize(("method", "path"), [("PUT", "/v2/transcript"), ("POST", "/v2/transcript/x")])
def test_wrong_method_is_405_with_json(
    emu: AssemblyAIEmulator, http: httpx.Client, method: str, path: str
) -> None:
    resp = http.request(method, emu.base_url("us") + path)
    assert resp.status_code == 405
    assert "error" in resp.json()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({}, "audio_url must be a String"),
        ({"audio_url": 3}, "audio_url must be a String"),
        ({"audio_url": "https://x/a.mp3", "format_text": "yes"}, "format_text must be a Boolean"),
        ([1, 2], "Request body must be a JSON object"),
    ],
)
def test_create_validates_body(
    emu: AssemblyAIEmulator, http: httpx.Client, payload: object, message: str
) -> None:
    resp = http.post(tr_url(emu), json=payload)
    assert resp.status_code == 400
    assert resp.json() == {"error": message}
    assert emu.ids("us") == []


def test_create_rejects_non_json(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    resp = http.post(tr_url(emu), content=b"audio_url=x", headers={"Content-Type": "text/plain"})
    assert resp.status_code == 400
    assert "error" in resp.json()


@pytest.mark.parametrize("status", ["queued", "processing"])
def test_delete_in_progress_is_refused(emu: AssemblyAIEmulator, http: httpx.Client, status: str) -> None:
    tid = emu.create_transcript("us", status=status)
    resp = http.delete(tr_url(emu, "us", tid))
    assert resp.status_code == 400
    assert resp.json() == {
        "error": f"Transcript {tid} is still {status}; it can only be deleted once completed or error"
    }
    assert not emu.is_deleted("us", tid)
    assert emu.get("us", tid)["status"] == status


def test_delete_in_progress_allowed_when_configured(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    emu.configure(allow_delete_in_progress=True)
    tid = emu.create_transcript("us", status="processing")
    resp = http.delete(tr_url(emu, "us", tid))
    assert resp.status_code == 200
    assert resp.json()["text"] == "Deleted by user."
    assert resp.json()["audio_duration"] is None
    assert emu.is_deleted("us", tid)


def test_error_transcripts_can_be_deleted(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    tid = emu.create_transcript("us", status="error")
    assert http.get(tr_url(emu, "us", tid)).json()["error"].startswith("Download error")
    resp = http.delete(tr_url(emu, "us", tid))
    assert resp.status_code == 200
    assert resp.json()["status"] == "completed"
    assert "error" not in resp.json()


def test_lifecycle_follows_the_clock(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    emu.configure(queued_seconds=2, processing_seconds=5)
    tid = http.post(tr_url(emu), json={"audio_url": "https://x/a.mp3"}).json()["id"]
    seen = []
    for step in (0, 1.9, 0.2, 4.7, 0.2):
        emu.advance(step)
        seen.append(http.get(tr_url(emu, "us", tid)).json()["status"])
    assert seen == ["queued", "queued", "processing", "processing", "completed"]


def test_error_rate_one_ends_in_error(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    emu.configure(error_rate=1.0, queued_seconds=0, processing_seconds=0)
    body = http.post(tr_url(emu), json={"audio_url": "https://x/missing.mp3"}).json()
    got = http.get(tr_url(emu, "us", body["id"])).json()
    assert got["status"] == "error"
    assert "https://x/missing.mp3" in got["error"]
    assert got["text"] is None


def test_error_rate_is_seeded(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    def run() -> list[str]:
        emu.reset()
        emu.configure(error_rate=0.5, queued_seconds=0, processing_seconds=0)
        ids = [
            http.post(tr_url(emu), json={"audio_url": f"https://x/{i}.mp3"}).json()["id"] for i in range(12)
        ]
        return [emu.get("us", t)["status"] for t in ids]

    first, second = run(), run()
    assert first == second
    assert 0 < first.count("error") < 12


def test_create_transcript_with_completes_in(emu: AssemblyAIEmulator) -> None:
    queued = emu.create_transcript("us", status="queued", completes_in=10)
    failing = emu.create_transcript(
        "us", status="processing", completes_in=4, final_status="error", error="boom"
    )
    stuck = emu.create_transcript("us", status="queued")
    assert [emu.get("us", t)["status"] for t in (queued, failing, stuck)] == [
        "queued",
        "processing",
        "queued",
    ]
    emu.advance(5)
    assert [emu.get("us", t)["status"] for t in (queued, failing, stuck)] == ["processing", "error", "queued"]
    assert emu.get("us", failing)["error"] == "boom"
    emu.advance(5)
    assert [emu.get("us", t)["status"] for t in (queued, failing, stuck)] == ["completed", "error", "queued"]
    emu.advance(10_000)
    assert emu.get("us", stuck)["status"] == "queued"


def test_regions_are_isolated(emu: AssemblyAIEmulator, http: httpx.Client) -> None:
    us_id = http.post(tr_url(emu, "us"), json={"audio_url": "https://x/us.mp3"}).json()["id"]
    eu_id = emu.create_transcript("eu")
    assert emu.base_url("us") != emu.base_url("eu")
    for method in ("GET", "DELETE"):
        resp = http.request(method, tr_url(emu, "eu", us_id))
        assert (resp.status_code, resp.json()) == (400, LOOKUP_ERROR)
        resp = http.request(method, tr_url(emu, "us", eu_id))
        assert (resp.status_code, resp.json()) == (400, LOOKUP_ERROR)
    assert [t["id"] for t in http.get(tr_url(emu, "eu")).json()["transcripts"]] == [eu_id]
    assert emu.ids("us") == [us_id]
    with pytest.raises(KeyError):
        emu.get("eu", us_id)
    assert {r.region for r in emu.requests} == {"us", "eu"}


def test_inspection_helpers(emu: AssemblyAIEmulator) -> None:
    done = emu.create_transcript("us", status="completed")
    failed = emu.create_transcript("us", status="error")
    gone = emu.create_transcript("us", status="completed", deleted=True)
    assert emu.ids("us") == [gone, failed, done]
    assert emu.ids("us", status="error") == [failed]
    assert emu.ids("us", deleted=True) == [gone]
    assert emu.ids("us", status="completed", deleted=False) == [done]
    assert emu.get("us", gone)["text"] == "Deleted by user."
    with pytest.raises(KeyError):
        emu.is_deleted("us", "nope")
    with pytest.raises(KeyError):
        emu.ids("apac")
