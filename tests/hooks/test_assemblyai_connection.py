"""The AssemblyAI connection: regions, base_url override, JSON and URI forms, clear configuration errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from urllib.parse import quote

import pytest
import respx
from airflow.providers.common.compat.sdk import AirflowNotFoundException

from airflow_provider_assemblyai.exceptions import AssemblyAIConfigError
from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook, ConnectionSettings
from tests.api_bodies import EU, US, transcript_body
from tests.conftest import AIRFLOW_DROPS_NON_OBJECT_EXTRAS, TEST_API_KEY
from tests.example_dags.dag_runner import AIRFLOW_3


@pytest.mark.parametrize(("region", "url"), [("us", US), ("eu", EU), ("EU", EU), (" us ", US), (None, US)])
def test_region_picks_the_base_url(set_connection: Callable[..., None], region: str | None, url: str) -> None:
    set_connection(**({"region": region} if region is not None else {}))
    hook = AssemblyAIHook()
    assert hook.base_url == url
    assert hook.region == (region.strip().lower() if region else "us")


async def test_region_picks_the_base_url_async(
    set_connection: Callable[..., None], api: respx.MockRouter, shared_clients: None
) -> None:
    set_connection(region="eu")
    route = api.get(f"{EU}/v2/transcript/abc").respond(200, json=transcript_body())
    await AssemblyAIHook().aget_transcript("abc")
    assert route.call_count == 1


def test_eu_requests_go_to_the_eu_host(set_connection: Callable[..., None], api: respx.MockRouter) -> None:
    set_connection(region="eu")
    us_route = api.route(host="api.assemblyai.com").respond(200, json=transcript_body())
    eu_route = api.get(f"{EU}/v2/transcript/abc").respond(200, json=transcript_body())
    AssemblyAIHook().get_transcript("abc")
    assert eu_route.call_count == 1
    assert us_route.call_count == 0


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("https://proxy.example.com/assemblyai/", "https://proxy.example.com/assemblyai"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://localhost:9", "http://localhost:9"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("http://127.5.6.7", "http://127.5.6.7"),
        (" https://api.eu.assemblyai.com ", EU),
    ],
)
def test_base_url_overrides_the_region(
    set_connection: Callable[..., None], base_url: str, expected: str
) -> None:
    set_connection(region="eu", base_url=base_url)
    hook = AssemblyAIHook()
    assert hook.base_url == expected
    assert hook.region == "eu"


def test_base_url_with_a_path_prefixes_requests(
    set_connection: Callable[..., None], api: respx.MockRouter
) -> None:
    set_connection(base_url="https://proxy.example.com/assemblyai")
    route = api.get("https://proxy.example.com/assemblyai/v2/transcript/abc").respond(
        200, json=transcript_body()
    )
    AssemblyAIHook().get_transcript("abc")
    assert route.call_count == 1


@pytest.mark.parametrize(
    "base_url",
    [
        "http://api.assemblyai.com",
        "http://10.0.0.5:8080",
        "http://localhost.evil.example",
        "http://127.0.0.1.nip.io",
        "http://0.0.0.0:8080",
    ],
)
def test_plain_http_only_for_loopback(set_connection: Callable[..., None], base_url: str) -> None:
    set_connection(base_url=base_url)
    with pytest.raises(AssemblyAIConfigError, match="over plain http to a non-loopback host") as info:
        _ = AssemblyAIHook().base_url
    assert "'assemblyai_default'" in str(info.value)
    assert "base_url" in str(info.value)


@pytest.mark.parametrize(
    "base_url",
    ["api.assemblyai.com", "ftp://api.assemblyai.com", "https://", "https://x.com/?a=1", "https://x#f"],
)
def test_invalid_base_url(set_connection: Callable[..., None], base_url: str) -> None:
    set_connection(base_url=base_url)
    with pytest.raises(AssemblyAIConfigError, match=r"'assemblyai_default' has an invalid base_url"):
        _ = AssemblyAIHook().base_url


# -- JSON and URI connection forms --------------------------------------------------------------------


def test_connection_from_json_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_ASSEMBLYAI_DEFAULT",
        json.dumps(
            {
                "conn_type": "assemblyai",
                "password": TEST_API_KEY,
                "extra": {"region": "eu", "timeout": 12, "max_retries": 2},
            }
        ),
    )
    settings = AssemblyAIHook().settings
    assert (settings.region, settings.base_url, settings.timeout, settings.max_retries) == ("eu", EU, 12.0, 2)
    assert settings.api_key == TEST_API_KEY


SPECIAL_KEY = "k/e@y:#%?&= +x"


def test_connection_from_uri_env_with_url_encoded_key(
    monkeypatch: pytest.MonkeyPatch, api: respx.MockRouter
) -> None:
    base = quote("http://127.0.0.1:8080", safe="")
    monkeypatch.setenv(
        "AIRFLOW_CONN_ASSEMBLYAI_DEFAULT",
        f"assemblyai://:{quote(SPECIAL_KEY, safe='')}@/?region=eu&timeout=7&max_retries=1&base_url={base}",
    )
    hook = AssemblyAIHook()
    settings = hook.settings
    assert settings.api_key == SPECIAL_KEY  # Airflow unquotes the URI's password
    assert (settings.region, settings.base_url, settings.timeout, settings.max_retries) == (
        "eu",
        "http://127.0.0.1:8080",
        7.0,
        1,
    )
    route = api.get("http://127.0.0.1:8080/v2/transcript/abc").respond(200, json=transcript_body())
    hook.get_transcript("abc")
    assert route.calls.last.request.headers["Authorization"] == SPECIAL_KEY


async def test_connection_from_uri_env_async(
    monkeypatch: pytest.MonkeyPatch, api: respx.MockRouter, shared_clients: None
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_ASSEMBLYAI_EU", f"assemblyai://:{quote(SPECIAL_KEY, safe='')}@/?region=eu"
    )
    route = api.get(f"{EU}/v2/transcript/abc").respond(200, json=transcript_body())
    await AssemblyAIHook("assemblyai_eu").aget_transcript("abc")
    assert route.calls.last.request.headers["Authorization"] == SPECIAL_KEY


def test_uri_without_extras_defaults_to_us(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ASSEMBLYAI_DEFAULT", "assemblyai://:plainkey123@")
    settings = AssemblyAIHook().settings
    assert (settings.region, settings.base_url, settings.timeout, settings.max_retries) == ("us", US, 30.0, 5)


# -- configuration errors name the connection and the field ------------------------------------------


@pytest.mark.parametrize(
    ("password", "extra", "match"),
    [
        (None, {}, "'assemblyai_default' has no API key: set its password field"),
        ("   ", {}, "has no API key"),
        ("k", {"region": "asia"}, r"unknown region 'asia'; expected one of \['eu', 'us'\]"),
        ("k", {"region": 1}, "unknown region 1"),
        ("k", {"timeout": 0}, "has timeout=0; expected a positive number of seconds"),
        ("k", {"timeout": -3}, "timeout=-3"),
        ("k", {"timeout": "soon"}, "timeout='soon'"),
        ("k", {"timeout": "nan"}, "timeout='nan'"),
        ("k", {"timeout": "inf"}, "timeout='inf'"),
        ("k", {"max_retries": -1}, "has max_retries=-1; expected a whole number >= 0"),
        ("k", {"max_retries": 1.5}, "max_retries=1.5"),
        ("k", {"max_retries": True}, "max_retries=True"),
    ],
)
def test_bad_configuration(
    set_connection: Callable[..., None], password: str | None, extra: dict[str, object], match: str
) -> None:
    set_connection(password=password, **extra)
    with pytest.raises(AssemblyAIConfigError, match=match) as info:
        _ = AssemblyAIHook().settings
    assert "'assemblyai_default'" in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ("{not json", "has an extra that is not valid JSON"),
        ('["eu"]', "has an extra that is not a JSON object"),
        ('"eu"', "not a JSON object"),
    ],
)
def test_garbage_extra(monkeypatch: pytest.MonkeyPatch, extra: str, match: str) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_MY_ASSEMBLYAI",
        json.dumps({"conn_type": "assemblyai", "password": TEST_API_KEY, "extra": extra}),
    )
    if AIRFLOW_DROPS_NON_OBJECT_EXTRAS:
        with pytest.raises(AirflowNotFoundException, match="`my_assemblyai` isn't defined") as lost:
            _ = AssemblyAIHook("my_assemblyai").settings
        assert TEST_API_KEY not in str(lost.value)
        return
    with pytest.raises(AssemblyAIConfigError, match=match) as info:
        _ = AssemblyAIHook("my_assemblyai").settings
    assert "'my_assemblyai'" in str(info.value)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (None, ("us", US, 30.0, 5)),
        ("", ("us", US, 30.0, 5)),
        ({"region": "", "timeout": "", "max_retries": ""}, ("us", US, 30.0, 5)),
        ('{"timeout": "2.5", "max_retries": " 3 "}', ("us", US, 2.5, 3)),
        ({"max_retries": 0}, ("us", US, 30.0, 0)),
    ],
)
def test_settings_defaults_and_string_values(extra: object, expected: tuple[object, ...]) -> None:
    settings = ConnectionSettings.from_connection("c", "key", extra)  # type: ignore[arg-type]
    assert (settings.region, settings.base_url, settings.timeout, settings.max_retries) == expected


def test_key_is_not_in_reprs(hook: AssemblyAIHook) -> None:
    settings = hook.settings
    assert settings.api_key == TEST_API_KEY
    for text in (repr(settings), str(settings), repr(hook), str(hook)):
        assert TEST_API_KEY not in text
    assert "assemblyai_default" in repr(hook)


def test_key_is_stripped(set_connection: Callable[..., None]) -> None:
    set_connection(password=f"  {TEST_API_KEY}\n")
    assert AssemblyAIHook().settings.api_key == TEST_API_KEY


# -- Airflow 3's short-secret warning (issue 15, item 7) ---------------------------------------------

SHORT_SECRET_WARNING = "Skipping masking for a secret as it's too short (<5 chars)"
READ_CONNECTION = """
import logging, sys
from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook
logging.basicConfig(stream=sys.stderr, level=logging.INFO)
hook = AssemblyAIHook()
hook.log.info("Connected to region %s", hook.region)
"""


@pytest.mark.parametrize("extra", [{"region": "us"}, {"region": "eu"}, {}], ids=["us", "eu", "no-region"])
def test_the_short_secret_warning_comes_from_airflow_for_a_region_in_the_extra(
    extra: dict[str, str],
) -> None:
    """
    Airflow 3 warns once per process when a connection extra holds a value under 5 characters (it
    warns before checking whether the key is sensitive; ``region`` is not, so it is never masked).
    Airflow 2.11 has no such check. A US connection can leave ``region`` out (the default) and
    sees no warning.
    """
    connection = {"conn_type": "assemblyai", "password": TEST_API_KEY, "extra": extra}
    env = {**os.environ, "AIRFLOW_CONN_ASSEMBLYAI_DEFAULT": json.dumps(connection)}
    result = subprocess.run(
        [sys.executable, "-c", READ_CONNECTION],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    output = result.stdout + result.stderr

    region = extra.get("region", "us")
    expected = 1 if AIRFLOW_3 and "region" in extra else 0
    assert output.count(SHORT_SECRET_WARNING) == expected, output
    assert f"Connected to region {region}" in output  # the region is never masked
    assert TEST_API_KEY not in output
