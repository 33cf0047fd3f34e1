"""Provider registration: metadata, the connection form declared once, and Airflow's own CLI seeing it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_assemblyai import __version__
from airflow_provider_assemblyai.get_provider_info import (
    CONN_FIELDS,
    REGION_BASE_URLS,
    UI_FIELD_BEHAVIOUR,
    get_provider_info,
)
from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook
from tests.conftest import skip_without_the_connection_form_toolkit

PACKAGE = "airflow_provider_assemblyai"


def _connection_type() -> dict[str, Any]:
    (conn_type,) = get_provider_info()["connection-types"]
    return conn_type  # type: ignore[no-any-return]


def test_provider_info_identity() -> None:
    info = get_provider_info()
    assert info["package-name"] == "airflow-provider-assemblyai"
    assert info["name"] == "AssemblyAI"
    assert "AssemblyAI" in info["description"]
    assert "transcript" in info["description"]
    assert info["versions"] == [__version__]
    json.dumps(info)  # plain data: Airflow caches and serializes it


@pytest.mark.parametrize(
    ("kind", "module"),
    [
        ("hooks", f"{PACKAGE}.hooks.assemblyai"),
        ("operators", f"{PACKAGE}.operators.assemblyai"),
        ("sensors", f"{PACKAGE}.sensors.assemblyai"),
        ("triggers", f"{PACKAGE}.triggers.assemblyai"),
    ],
)
def test_provider_info_declares_one_module_per_kind(kind: str, module: str) -> None:
    (entry,) = get_provider_info()[kind]
    assert entry["python-modules"] == [module]
    assert entry["integration-name"] == "AssemblyAI"


def test_connection_type() -> None:
    conn_type = _connection_type()
    assert conn_type["connection-type"] == AssemblyAIHook.conn_type == "assemblyai"
    assert conn_type["hook-name"] == AssemblyAIHook.hook_name == "AssemblyAI"
    module, _, name = conn_type["hook-class-name"].rpartition(".")
    assert (module, name) == (AssemblyAIHook.__module__, AssemblyAIHook.__name__)


def test_ui_field_behaviour_hides_unused_fields_and_relabels_password() -> None:
    behaviour = _connection_type()["ui-field-behaviour"]
    assert sorted(behaviour["hidden-fields"]) == ["host", "login", "port", "schema"]
    assert behaviour["relabeling"] == {"password": "API Key"}


def test_conn_fields() -> None:
    fields = _connection_type()["conn-fields"]
    assert list(fields) == ["region", "base_url", "timeout", "max_retries"]
    region = fields["region"]["schema"]
    assert region["enum"] == ["eu", "us"] == sorted(REGION_BASE_URLS)
    assert region["default"] == "us"
    assert "integer" in fields["timeout"]["schema"]["type"]
    assert fields["timeout"]["schema"]["minimum"] >= 1
    assert fields["max_retries"]["schema"] == {"type": ["integer", "null"], "minimum": 0, "default": 5}
    assert fields["base_url"]["schema"]["type"] == ["string", "null"]
    for spec in fields.values():
        assert spec["label"]
        assert spec["description"]


def test_conn_fields_are_valid_json_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    for name, spec in CONN_FIELDS.items():
        jsonschema.Draft202012Validator.check_schema(spec["schema"])
        validator = jsonschema.Draft202012Validator(spec["schema"])
        default = spec["schema"].get("default")
        if default is not None:
            assert validator.is_valid(default), name
        if "enum" not in spec["schema"]:  # an enum field is a select with a default (as in the SMTP provider)
            assert validator.is_valid(None), name  # every free-form field is optional
    assert not jsonschema.Draft202012Validator(CONN_FIELDS["region"]["schema"]).is_valid("asia")


def test_hook_ui_field_behaviour_is_the_provider_info_one() -> None:
    behaviour = AssemblyAIHook.get_ui_field_behaviour()
    declared = _connection_type()["ui-field-behaviour"]
    assert behaviour["hidden_fields"] == declared["hidden-fields"]
    assert behaviour["relabeling"] == declared["relabeling"]
    assert behaviour["placeholders"] == declared["placeholders"]
    assert set(behaviour["placeholders"]) - {"password"} <= set(CONN_FIELDS)
    # A copy: a caller mutating it cannot change the shared declaration.
    behaviour["hidden_fields"].append("extra")
    assert "extra" not in UI_FIELD_BEHAVIOUR["hidden_fields"]


def test_hook_form_widgets_match_conn_fields() -> None:
    """Airflow 2.11 and 3.0/3.1 read the widgets, 3.2+ reads conn-fields: they must stay identical."""
    try:
        import flask_appbuilder  # noqa: F401
        import wtforms
    except ImportError as error:  # Airflow 3.3 without the FAB provider has no WTForms
        pytest.skip(f"connection form widgets need flask_appbuilder and wtforms: {error}")
    from flask import Flask
    from flask_babel import Babel
    from werkzeug.datastructures import MultiDict

    app = Flask(__name__)
    Babel(app)  # the labels are lazy_gettext strings, as in Airflow's own connection form
    widgets = AssemblyAIHook.get_connection_form_widgets()
    assert list(widgets) == list(CONN_FIELDS)
    form_class = type("ConnectionForm", (wtforms.Form,), dict(widgets))
    with app.test_request_context():
        form = form_class()
        for name in widgets:
            spec, schema, field = CONN_FIELDS[name], CONN_FIELDS[name]["schema"], form[name]
            assert str(field.label.text) == spec["label"]
            assert field.description == spec["description"]
            assert field.default == schema.get("default")
            expected_class = wtforms.IntegerField if "integer" in schema["type"] else wtforms.StringField
            assert isinstance(field, expected_class), name
            validators = {type(v).__name__: v for v in field.validators}
            assert "Optional" in validators
            if "enum" in schema:
                assert list(validators["AnyOf"].values) == schema["enum"]
            if "minimum" in schema:
                assert validators["NumberRange"].min == schema["minimum"]

        # The form accepts the declared defaults and rejects what the schema rejects.
        def submitted(**values: str) -> Any:
            return form_class(formdata=MultiDict(values))

        assert submitted(region="eu", timeout="30", max_retries="0").validate()
        assert submitted().validate()  # every field is optional
        assert not submitted(region="asia").validate()
        assert not submitted(timeout="0").validate()
        assert not submitted(max_retries="-1").validate()


def _airflow_cli_json(tmp_path: Path, *commands: tuple[str, ...]) -> list[Any]:
    """Run ``airflow <command> --output json`` for each command, concurrently, in a fresh AIRFLOW_HOME."""
    home = tmp_path / "airflow-home"
    home.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW_CONN_", "AIRFLOW__", "AIRFLOW_HOME"))
    }
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False", PYTHONWARNINGS="ignore")
    airflow = str(Path(sys.executable).with_name("airflow"))
    processes = [
        subprocess.Popen(
            [airflow, *command, "--output", "json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in commands
    ]
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=240)
        assert process.returncode == 0, stderr[-2000:]
        # Airflow 2.11 may print warnings, 3.0 log lines ("[2026-...] {...} INFO ..."), before the JSON.
        start = re.search(r"^\[\s*[{\]]", stdout, re.MULTILINE)
        assert start is not None, stdout[-2000:]
        results.append(json.loads(stdout[start.start() :]))
    return results


def test_airflow_cli_lists_provider_and_connection_type(tmp_path: Path) -> None:
    """A fresh Airflow (throwaway AIRFLOW_HOME) discovers the provider through its entry point."""
    providers, hooks = _airflow_cli_json(tmp_path, ("providers", "list"), ("providers", "hooks"))
    (ours,) = [p for p in providers if p["package_name"] == "airflow-provider-assemblyai"]
    assert ours["version"] == __version__

    (hook,) = [h for h in hooks if h["connection_type"] == "assemblyai"]
    assert hook["class"] == f"{PACKAGE}.hooks.assemblyai.AssemblyAIHook"
    assert hook["conn_id_attribute_name"] == "assemblyai_conn_id"
    assert hook["package_name"] == "airflow-provider-assemblyai"
    assert hook["hook_name"] == "AssemblyAI"


def test_providers_manager_builds_the_connection_form() -> None:
    """Every lane's ProvidersManager ends up with the same four extra fields and field behaviour."""
    from airflow.providers_manager import ProvidersManager

    skip_without_the_connection_form_toolkit()

    manager = ProvidersManager()
    widgets = sorted(k for k in manager.connection_form_widgets if k.startswith("extra__assemblyai__"))
    assert widgets == [f"extra__assemblyai__{name}" for name in sorted(CONN_FIELDS)]
    behaviour = manager.field_behaviours["assemblyai"]
    assert behaviour["hidden_fields"] == UI_FIELD_BEHAVIOUR["hidden_fields"]
    assert behaviour["relabeling"] == {"password": "API Key"}
    assert behaviour["placeholders"]["password"] == UI_FIELD_BEHAVIOUR["placeholders"]["password"]
    assert behaviour["placeholders"]["extra__assemblyai__region"] == "us"
