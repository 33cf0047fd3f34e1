"""
The AssemblyAI connection form, as Airflow really shows it.

* Both lanes: Airflow's own ProvidersManager (what the 2.11 UI renders from the hook's
  ``get_connection_form_widgets`` / ``get_ui_field_behaviour``, and what 3.3 builds from ``conn-fields``).
* Airflow 3.3: a real api-server (throwaway SQLite home), headless Debian Chromium driven by
  Playwright through the Add Connection dialog, and the REST API's ``POST /connections/test``
  reaching the hook's ``test_connection()`` against the emulator on 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_assemblyai.testing import AssemblyAIEmulator
from tests.conftest import skip_without_the_connection_form_toolkit
from tests.e2e.conn_form_server import ADMIN_USER, AirflowApiServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
UI_TIMEOUT_MS = 30_000
GOOD_KEY = "conn-form-good-key-5d1e9b27"  # distinctive, so a leak is easy to grep for
BAD_KEY = "conn-form-bad-key-a7c3f04e"

EXPECTED_EXTRA_FIELDS: dict[str, dict[str, Any]] = {
    "region": {"label": "Region", "kind": "string", "default": "us", "choices": ["eu", "us"]},
    "base_url": {"label": "Base URL (optional)", "kind": "string", "default": None, "choices": None},
    "timeout": {"label": "Timeout (seconds)", "kind": "integer", "default": 30, "choices": None},
    "max_retries": {"label": "Max retries", "kind": "integer", "default": 5, "choices": None},
}
# Airflow 3.3's form labels this input with a ``for`` that points elsewhere, so find it by name.
BASE_URL_INPUT = "input[name='element_base_url']"
HIDDEN_FIELDS = {"host": "Host", "schema": "Schema", "port": "Port", "login": "Login"}


# -- Both lanes: what Airflow's ProvidersManager hands to the UI ----------------------------------


def _describe_widget(field: Any) -> dict[str, Any]:
    """Normalise a form widget: a ``conn-fields`` dict (Airflow 3.2+) or a wtforms UnboundField (2.11)."""
    if isinstance(field, dict):
        schema = field["schema"]
        return {
            "label": schema["title"],
            "kind": "integer" if "integer" in schema["type"] else "string",
            "default": field["value"],
            "choices": schema.get("enum"),
        }
    any_of = [v for v in field.kwargs["validators"] if type(v).__name__ == "AnyOf"]
    return {
        "label": str(field.args[0]),
        "kind": "integer" if field.field_class.__name__ == "IntegerField" else "string",
        "default": field.kwargs.get("default"),
        "choices": sorted(any_of[0].values) if any_of else None,
    }


def test_providers_manager_shows_the_assemblyai_form() -> None:
    from airflow.providers_manager import ProvidersManager

    skip_without_the_connection_form_toolkit()

    manager = ProvidersManager()
    widgets = {
        info.field_name: _describe_widget(info.field)
        for key, info in manager.connection_form_widgets.items()
        if key.startswith("extra__assemblyai__")
    }
    assert widgets == EXPECTED_EXTRA_FIELDS

    behaviour = manager.field_behaviours["assemblyai"]
    assert set(behaviour["hidden_fields"]) == set(HIDDEN_FIELDS)
    assert behaviour["relabeling"] == {"password": "API Key"}
    assert behaviour["placeholders"]["password"] == "your AssemblyAI API key"

    hook = manager.hooks["assemblyai"]
    assert hook is not None
    assert (hook.hook_name, hook.package_name) == ("AssemblyAI", "airflow-provider-assemblyai")
    assert hook.connection_testable  # the UI's Test button is enabled for the type


# -- Airflow 3.3: a real api-server ------------------------------------------------------------------


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowApiServer]:
    with AirflowApiServer(tmp_path_factory.mktemp("airflow-home")) as server:
        yield server


@pytest.fixture(scope="module")
def emulator() -> Iterator[AssemblyAIEmulator]:
    with AssemblyAIEmulator(api_keys=(GOOD_KEY,)) as emu:
        yield emu


def _assert_no_key_in_server_log(server: AirflowApiServer) -> None:
    log = server.log_path.read_text(errors="replace")
    for key in (GOOD_KEY, BAD_KEY):
        assert key not in log, "the API key appears in the api-server's log"


def _transcript_list_calls(emulator: AssemblyAIEmulator, region: str) -> int:
    return len(emulator.requests_for(method="GET", region=region, path="/v2/transcript"))


@pytest.mark.airflow_e2e
@pytest.mark.af3_only
def test_rest_test_connection_with_a_good_key(
    api_server: AirflowApiServer, emulator: AssemblyAIEmulator
) -> None:
    base_url = emulator.base_url("eu")
    before = _transcript_list_calls(emulator, "eu")
    response = api_server.api(
        "POST",
        "/connections/test",
        {
            "connection_id": "assemblyai_probe",
            "conn_type": "assemblyai",
            "password": GOOD_KEY,
            "extra": json.dumps({"region": "eu", "base_url": base_url}),
        },
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"status": True, "message": f"Connected to AssemblyAI (eu, {base_url})"}
    calls = emulator.requests_for(method="GET", region="eu", path="/v2/transcript")[before:]
    assert [(c.query, c.status, c.key_matched) for c in calls] == [("limit=1", 200, True)]
    _assert_no_key_in_server_log(api_server)


@pytest.mark.airflow_e2e
@pytest.mark.af3_only
def test_rest_test_connection_with_a_bad_key(
    api_server: AirflowApiServer, emulator: AssemblyAIEmulator
) -> None:
    before = _transcript_list_calls(emulator, "us")
    response = api_server.api(
        "POST",
        "/connections/test",
        {
            "connection_id": "assemblyai_probe",
            "conn_type": "assemblyai",
            "password": BAD_KEY,
            "extra": json.dumps({"base_url": emulator.base_url("us")}),
        },
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["status"] is False
    assert "HTTP 401" in result["message"]
    assert "check the connection's API key" in result["message"]
    assert BAD_KEY not in result["message"]
    assert GOOD_KEY not in result["message"]
    # 401 is not retried: exactly one request reached the emulator, with a key it refused
    calls = emulator.requests_for(method="GET", region="us", path="/v2/transcript")[before:]
    assert [(c.status, c.key_matched) for c in calls] == [(401, False)]
    _assert_no_key_in_server_log(api_server)


# -- Airflow 3.3: the form in headless Chromium --------------------------------------------------------


@pytest.fixture(scope="module")
def browser(api_server: AirflowApiServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A Chromium context on a fresh profile, logged in to the api-server as the admin."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            chromium_sandbox=False,
            viewport={"width": 1280, "height": 1100},
        )
        try:
            context.set_default_timeout(UI_TIMEOUT_MS)
            page = context.pages[0] if context.pages else context.new_page()
            page.goto(f"{api_server.url}/")
            page.get_by_label("Username").fill(ADMIN_USER)
            page.get_by_label("Password").fill(api_server.password)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{api_server.url}/")
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A new tab in the logged-in browser."""
    page = browser.new_page()
    try:
        yield page
    finally:
        page.close()


def _choose(page: Any, combobox_label: str, option: str) -> None:
    combobox = page.get_by_role("combobox", name=combobox_label)
    combobox.click()
    page.get_by_role("option", name=option, exact=True).click()


def _choose_listing_options(page: Any, combobox_label: str, option: str) -> list[str]:
    """Open a combobox, choose ``option`` and return every option it offered."""
    page.get_by_role("combobox", name=combobox_label).click()
    options = page.get_by_role("option")
    options.first.wait_for()
    texts: list[str] = options.all_inner_texts()
    options.filter(has_text=option).click()
    return texts


def _side_by_side(context: Any, images: list[bytes], path: Path) -> None:
    """Write the PNG ``images`` side by side into one PNG at ``path`` (laid out by the browser itself)."""
    tags = "".join(f'<img src="data:image/png;base64,{base64.b64encode(png).decode()}">' for png in images)
    page = context.new_page()
    try:
        page.set_viewport_size({"width": 2400, "height": 1200})
        page.set_content(
            '<body style="margin:0"><div id="all" style="display:inline-flex;align-items:flex-start;'
            f'gap:12px;padding:12px;background:#cbd5e1">{tags}</div></body>'
        )
        page.locator("#all").screenshot(path=str(path))
    finally:
        page.close()


@pytest.mark.airflow_e2e
@pytest.mark.af3_only
@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's Chromium is not installed (make browser-deps)")
@pytest.mark.timeout(240)
def test_connection_form_in_the_browser(
    page: Any, api_server: AirflowApiServer, emulator: AssemblyAIEmulator, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page.goto(f"{api_server.url}/connections")
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Connection ID").fill("assemblyai_ui")

    # Control: a generic connection shows the standard fields this form hides.
    _choose(page, "Connection Type", "Generic")
    for name, label in HIDDEN_FIELDS.items():
        expect(dialog.locator(f"input[name='{name}']")).to_have_count(1)
        expect(dialog.get_by_label(label, exact=True)).to_be_visible()

    _choose(page, "Connection Type", "AssemblyAI")
    api_key = dialog.get_by_label("API Key", exact=True)
    expect(api_key).to_have_attribute("name", "password")
    expect(api_key).to_have_attribute("type", "password")
    expect(api_key).to_have_attribute("placeholder", "your AssemblyAI API key")
    for name, label in HIDDEN_FIELDS.items():
        expect(dialog.locator(f"input[name='{name}']")).to_have_count(0)
        expect(dialog.get_by_label(label, exact=True)).to_have_count(0)
    api_key.fill(GOOD_KEY)
    standard_png = dialog.screenshot()

    # The dialog's accordion shows one section at a time: open the extra fields.
    dialog.get_by_role("button", name="Extra Fields", exact=True).click()
    for spec in EXPECTED_EXTRA_FIELDS.values():
        expect(dialog.get_by_text(spec["label"], exact=True)).to_be_visible()
    region_value = dialog.locator("input[name='element_region']")
    expect(region_value).to_have_value("us")
    expect(dialog.get_by_label("Timeout (seconds)")).to_have_value("30")
    expect(dialog.get_by_label("Max retries")).to_have_value("5")
    expect(dialog.locator(BASE_URL_INPUT)).to_have_value("")
    assert sorted(_choose_listing_options(page, "Region", "eu")) == ["eu", "us"]
    expect(region_value).to_have_value("eu")
    screenshot = tmp_path / "connection-form.png"
    _side_by_side(page.context, [standard_png, dialog.screenshot()], screenshot)
    assert screenshot.stat().st_size > 20_000

    dialog.locator(BASE_URL_INPUT).fill(emulator.base_url("eu"))
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_have_count(0)
    expect(page.get_by_role("cell", name="assemblyai_ui", exact=True)).to_be_visible()

    # Reload through the REST API: what the form stored.
    stored = api_server.api("GET", "/connections/assemblyai_ui")
    assert stored.status_code == 200, stored.text
    body = stored.json()
    assert body["conn_type"] == "assemblyai"
    assert body["password"] != GOOD_KEY  # stored, but never served back
    assert (body["host"], body["login"], body["schema"], body["port"]) == (None, None, None, None)
    extra = json.loads(body["extra"])
    assert extra["region"] == "eu"
    assert extra["base_url"] == emulator.base_url("eu")
    assert {k: extra[k] for k in ("timeout", "max_retries") if k in extra} in (
        {},
        {"timeout": 30, "max_retries": 5},
    )
    # ...and the stored key is the one typed in the browser: the emulator accepts only GOOD_KEY.
    probe = api_server.api(
        "POST", "/connections/test", {"connection_id": "assemblyai_ui", "conn_type": "assemblyai"}
    )
    assert probe.json() == {
        "status": True,
        "message": f"Connected to AssemblyAI (eu, {emulator.base_url('eu')})",
    }

    # Reload through the UI: the edit form shows the saved region and URL.
    page.reload()
    page.get_by_role("row").filter(has_text="assemblyai_ui").get_by_role(
        "button", name="Edit Connection"
    ).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Extra Fields", exact=True).click()
    expect(dialog.locator("input[name='element_region']")).to_have_value("eu")
    expect(dialog.locator(BASE_URL_INPUT)).to_have_value(emulator.base_url("eu"))
    _assert_no_key_in_server_log(api_server)


@pytest.mark.airflow_e2e
@pytest.mark.af3_only
@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's Chromium is not installed (make browser-deps)")
@pytest.mark.xfail(
    strict=True,
    reason="Airflow 3.3.2: the connection list's Test button posts port=0 for a connection without a port, "
    "and POST /connections/test answers 400 'The host or port to test differs from the stored connection'",
)
def test_list_test_button(page: Any, api_server: AirflowApiServer, emulator: AssemblyAIEmulator) -> None:
    from playwright.sync_api import expect

    extra = json.dumps({"region": "eu", "base_url": emulator.base_url("eu")})
    created = api_server.api(
        "POST",
        "/connections",
        {
            "connection_id": "assemblyai_button",
            "conn_type": "assemblyai",
            "password": GOOD_KEY,
            "extra": extra,
        },
    )
    assert created.status_code == 201, created.text
    page.goto(f"{api_server.url}/connections")
    row = page.get_by_role("row").filter(has_text="assemblyai_button")
    with page.expect_response(lambda r: r.url.endswith("/api/v2/connections/test")) as answer:
        row.get_by_role("button", name="Test Connection").click()
    assert answer.value.status == 200, answer.value.text()
    assert answer.value.json()["status"] is True
    expect(page.get_by_role("status").filter(has_text="Connected to AssemblyAI")).to_be_visible()
