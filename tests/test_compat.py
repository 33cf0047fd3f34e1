"""Airflow 2.11 / 3.x compatibility: one import path (common-compat), every module importable, one range.

Runs on every lane (``make test``, one lane per constraints file); what it checks depends on nothing but
the running interpreter, the package source and the project's own metadata files (the lanes' constraints,
the Makefile, the README and the committed lane results).
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import importlib.util
import json
import pkgutil
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import airflow
import pytest
from packaging.requirements import Requirement
from packaging.version import Version

import airflow_provider_assemblyai
from airflow_provider_assemblyai.get_provider_info import get_provider_info

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = Path(airflow_provider_assemblyai.__file__).resolve().parent
# tomllib is stdlib from Python 3.11; on 3.10 the tomli backport is needed to read pyproject.toml
tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
AIRFLOW_MAJOR = Version(airflow.__version__).major

IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError", "AttributeError", "Exception", "BaseException"}
VERSION_MARKERS = re.compile(r"AIRFLOW_V_\d|AIRFLOW_VERSION|__version__|airflow_version|version\(")


# -- (a) no module does its own Airflow-version import dance -------------------------------------
# Modules that differ between Airflow 2 and 3 are imported through airflow.providers.common.compat:
# ruff's banned-api (TID251, pyproject.toml) enforces that; what it cannot see is checked here.


def _airflow_imports(nodes: list[ast.stmt]) -> list[str]:
    """Return the ``airflow.*`` modules imported anywhere inside ``nodes``."""
    found = []
    for node in (sub for stmt in nodes for sub in ast.walk(stmt)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if _is_airflow(alias.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _is_airflow(node.module or ""):
            found.append(node.module or "")
    return found


def _is_airflow(module: str) -> bool:
    return module == "airflow" or module.startswith("airflow.")


def _catches_import_errors(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(
        (isinstance(n, ast.Name) and n.id in IMPORT_ERRORS)
        or (isinstance(n, ast.Attribute) and n.attr in IMPORT_ERRORS)
        for n in names
    )


def compat_violations(source: str, filename: str) -> list[str]:
    """
    Return the Airflow-version import dances in ``source``, one message per finding.

    Flags ``try: import airflow.X / except ImportError: ...`` fallbacks and ``if AIRFLOW_V_3_0_PLUS:``
    style branches around Airflow imports (ruff's TID251 flags direct imports of the modules that
    differ between Airflow 2 and 3).

    :param source: the module's source code.
    :param filename: the module's path, for the messages.
    """
    problems = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Try) and any(_catches_import_errors(h) for h in node.handlers):
            imported = _airflow_imports(node.body) + _airflow_imports(
                [stmt for h in node.handlers for stmt in h.body]
            )
            if imported:
                problems.append(f"{where}: try/except import fallback around {sorted(set(imported))}")
        elif isinstance(node, ast.If) and VERSION_MARKERS.search(ast.unparse(node.test)):
            imported = _airflow_imports(node.body + node.orelse)
            if imported:
                problems.append(f"{where}: Airflow-version branch around imports of {sorted(set(imported))}")
    return problems


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("try:\n    from airflow.sdk import BaseHook\nexcept ImportError:\n    pass\n", "try/except"),
        (
            "try:\n    import foo\nexcept (ModuleNotFoundError, KeyError):\n"
            "    from airflow.hooks.base import BaseHook\n",
            "try/except",
        ),
        ("if AIRFLOW_V_3_0_PLUS:\n    from airflow.providers.x import y\n", "version branch"),
    ],
)
def test_compat_checker_catches_version_dances(snippet: str, expected: str) -> None:
    problems = compat_violations(snippet, "bad.py")
    assert len(problems) >= 1
    assert expected.split()[0] in problems[0] or expected in problems[0]


@pytest.mark.parametrize(
    "snippet",
    [
        "from airflow.providers.common.compat.sdk import BaseHook, conf\n",
        "from airflow.triggers.base import BaseTrigger, TriggerEvent\n",
        "try:\n    import json\nexcept ImportError:\n    json = None\n",
        "try:\n    from airflow.providers.common.compat.sdk import conf\nexcept KeyError:\n    pass\n",
    ],
)
def test_compat_checker_accepts_compat_imports(snippet: str) -> None:
    assert compat_violations(snippet, "good.py") == []


def ruff_banned_imports(source: str, filename: str) -> list[str]:
    """The TID251 (banned-api) findings ruff reports for ``source``, checked as if it were ``filename``."""
    found = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--select",
            "TID251",
            "--output-format",
            "concise",
            "--no-cache",
            "--stdin-filename",
            filename,
            "-",
        ],
        input=source,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    return [line for line in found.stdout.splitlines() if "TID251" in line]


@pytest.mark.parametrize(
    ("snippet", "banned"),
    [
        ("from airflow.models import BaseOperator\n", "airflow.models"),
        ("import airflow.sdk.definitions.dag\n", "airflow.sdk"),
        ("from airflow.utils.log.secrets_masker import redact\n", "airflow.utils.log.secrets_masker"),
        ("from airflow.providers.common.compat.sdk import BaseHook, conf\n", None),
        ("from airflow.triggers.base import BaseTrigger, TriggerEvent\n", None),
    ],
)
def test_ruff_bans_version_specific_airflow_imports_in_the_package(snippet: str, banned: str | None) -> None:
    pytest.importorskip("ruff")
    found = ruff_banned_imports(snippet, "airflow_provider_assemblyai/new_module.py")
    assert len(found) == (0 if banned is None else 1), found
    if banned is not None:
        assert f"`{banned}` is banned" in found[0]
        assert "airflow.providers.common.compat" in found[0]
    assert ruff_banned_imports(snippet, "tests/test_new.py") == []  # the rule is the package's


def test_package_has_no_airflow_version_import_dance() -> None:
    sources = sorted(PACKAGE_DIR.rglob("*.py"))
    assert len(sources) >= 8, f"expected the package's modules under {PACKAGE_DIR}, found {sources}"
    problems = [
        problem
        for path in sources
        for problem in compat_violations(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert problems == [], "\n".join(problems)


# -- (b) every public module imports on the running lane ------------------------------------------


def _public_modules() -> list[str]:
    names = [airflow_provider_assemblyai.__name__]
    for info in pkgutil.walk_packages([str(PACKAGE_DIR)], prefix=f"{airflow_provider_assemblyai.__name__}."):
        if not any(part.startswith("_") and part != "__main__" for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


PUBLIC_MODULES = _public_modules()


def test_public_modules_were_found() -> None:
    for expected in ("hooks.assemblyai", "operators.assemblyai", "models", "exceptions", "testing"):
        assert f"airflow_provider_assemblyai.{expected}" in PUBLIC_MODULES


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_public_module_imports(module: str) -> None:
    imported = importlib.import_module(module)
    assert imported.__name__ == module
    public = getattr(imported, "__all__", None)
    if public is not None:
        missing = [name for name in public if not hasattr(imported, name)]
        assert missing == [], f"{module}.__all__ names what it does not define: {missing}"


def _provider_modules() -> list[str]:
    info = get_provider_info()
    modules = [
        m
        for kind in ("hooks", "operators", "sensors", "triggers")
        for e in info[kind]
        for m in e["python-modules"]
    ]
    modules += [c["hook-class-name"] for c in info["connection-types"]]
    return modules


@pytest.mark.parametrize("dotted", _provider_modules())
def test_modules_declared_to_airflow_exist(dotted: str) -> None:
    """Every module and class that get_provider_info() announces to the ProvidersManager imports."""
    try:
        importlib.import_module(dotted)
    except ModuleNotFoundError as exc:
        if exc.name != dotted:
            raise
        module, _, attribute = dotted.rpartition(".")
        assert hasattr(importlib.import_module(module), attribute), f"{module} has no {attribute}"


def test_base_classes_resolve_to_the_running_airflow() -> None:
    """common-compat picks the Task SDK's BaseHook where the SDK has one (3.1+), the classic one before."""
    from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook

    base_modules = {cls.__module__ for cls in AssemblyAIHook.__mro__}
    sdk_hook = AIRFLOW_MAJOR >= 3 and importlib.util.find_spec("airflow.sdk.bases.hook") is not None
    expected = "airflow.sdk.bases.hook" if sdk_hook else "airflow.hooks.base"
    assert expected in base_modules, f"AssemblyAIHook bases on Airflow {airflow.__version__}: {base_modules}"


# -- (c) one supported range, stated consistently ---------------------------------------------


def _requirement(name: str) -> Requirement:
    matches = [Requirement(r) for r in PYPROJECT["project"]["dependencies"] if Requirement(r).name == name]
    assert len(matches) == 1, f"pyproject declares {name} {len(matches)} times"
    return matches[0]


AIRFLOW_REQUIREMENT = _requirement("apache-airflow")
AIRFLOW_FLOOR = Version(str(AIRFLOW_REQUIREMENT.specifier).removeprefix(">="))
FLOOR_TEXT = f"{AIRFLOW_FLOOR.major}.{AIRFLOW_FLOOR.minor}"


def test_declared_airflow_range() -> None:
    assert str(AIRFLOW_REQUIREMENT.specifier) == ">=2.11.0"


def test_running_airflow_is_in_the_declared_range() -> None:
    assert AIRFLOW_REQUIREMENT.specifier.contains(airflow.__version__)
    compat = Version(importlib.metadata.version("apache-airflow-providers-common-compat"))
    assert _requirement("apache-airflow-providers-common-compat").specifier.contains(compat)


def test_installed_metadata_matches_pyproject() -> None:
    """The installed (editable) distribution declares the same range, so the venv is not stale."""
    installed = [Requirement(r) for r in importlib.metadata.requires("airflow-provider-assemblyai") or []]
    airflow_reqs = [r for r in installed if r.name == "apache-airflow" and r.marker is None]
    assert [str(r.specifier) for r in airflow_reqs] == [str(AIRFLOW_REQUIREMENT.specifier)]
    assert (
        importlib.metadata.version("airflow-provider-assemblyai") == airflow_provider_assemblyai.__version__
    )


def test_provider_info_matches_pyproject_and_airflow_schema() -> None:
    import jsonschema

    info = get_provider_info()
    assert info["package-name"] == PYPROJECT["project"]["name"]
    assert info["versions"][0] == airflow_provider_assemblyai.__version__
    dependencies = info.get("dependencies")
    if dependencies is not None:  # provider.yaml style; must then state the same range
        assert f"apache-airflow{AIRFLOW_REQUIREMENT.specifier}" in dependencies
    schema_path = Path(airflow.__file__).parent / "provider_info.schema.json"
    jsonschema.validate(info, json.loads(schema_path.read_text()))


def _stated_airflow_versions(text: str) -> list[Version]:
    return [Version(v) for v in re.findall(r"Airflow (\d+\.\d+)(?:\.\d+)?(?!\.?\d)", text)]


@pytest.mark.parametrize("document", ["README.md", "docs/compatibility.md"])
def test_documents_state_the_same_floor(document: str) -> None:
    text = (ROOT / document).read_text()
    stated = _stated_airflow_versions(text)
    assert Version(FLOOR_TEXT) in stated, f"{document} never states the supported floor Airflow {FLOOR_TEXT}"
    below = [str(v) for v in stated if v < Version(FLOOR_TEXT)]
    assert below == [], f"{document} mentions Airflow versions below the floor {FLOOR_TEXT}: {below}"


def _load_compat_table() -> Any:
    """scripts/compat_table.py, which parses the lanes and renders the compatibility table."""
    spec = importlib.util.spec_from_file_location("compat_table", ROOT / "scripts" / "compat_table.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


COMPAT_TABLE = _load_compat_table()
LANES: dict[str, dict[str, str]] = COMPAT_TABLE.lanes(ROOT)
CLASSIFIER_PYTHONS = [
    Version(c.rsplit(" ", 1)[1])
    for c in PYPROJECT["project"]["classifiers"]
    if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
]


@pytest.mark.parametrize("lane", sorted(LANES))
def test_each_lane_pins_its_airflow_and_the_providers_dependencies(lane: str) -> None:
    """constraints/airflow-X.Y.txt names X.Y.Z on its first line, pins it and all the provider needs."""
    path = ROOT / "constraints" / f"airflow-{lane}.txt"
    airflow_pin = Version(LANES[lane]["airflow"])
    assert f"{airflow_pin.major}.{airflow_pin.minor}" == lane, f"{path.name} names Airflow {airflow_pin}"
    lines = path.read_text().splitlines()
    pins = dict(line.split("==", 1) for line in lines if not line.startswith("#"))
    assert all(re.fullmatch(r"[a-z0-9._-]+==\S+", line) for line in lines if not line.startswith("#"))
    assert pins["apache-airflow"] == str(airflow_pin)
    for requirement in (Requirement(r) for r in PYPROJECT["project"]["dependencies"]):
        assert requirement.name in pins, f"{path.name} does not pin {requirement.name}"
        assert requirement.specifier.contains(pins[requirement.name]), (
            f"{path.name} pins {requirement.name}=={pins[requirement.name]}, outside {requirement}"
        )


def test_lanes_cover_every_claimed_airflow_minor_and_python() -> None:
    """A lane for the floor and every Airflow 3 minor up to the newest; every classifier's Python."""
    minors = sorted(Version(lane) for lane in LANES)
    assert Version(FLOOR_TEXT) in minors
    newest = max(minors)
    assert newest.major == 3
    expected_3x = [Version(f"3.{minor}") for minor in range(newest.minor + 1)]
    assert [v for v in minors if v.major == 3] == expected_3x
    lane_pythons = {Version(lane["python"]) for lane in LANES.values()}
    assert lane_pythons == set(CLASSIFIER_PYTHONS), (
        f"lanes run Python {sorted(map(str, lane_pythons))}, the classifiers claim "
        f"{sorted(map(str, CLASSIFIER_PYTHONS))}"
    )


def test_this_run_is_a_declared_lane() -> None:
    running = {"airflow": airflow.__version__, "python": f"{sys.version_info.major}.{sys.version_info.minor}"}
    assert running in LANES.values(), f"Airflow {running} is not one of the lanes {LANES}"


def test_the_full_lane_is_a_lane() -> None:
    makefile = (ROOT / "Makefile").read_text()
    full = re.search(r"^FULL_LANE := (\S+)$", makefile, re.MULTILINE)
    assert full is not None
    assert full.group(1) in LANES


def test_python_range_is_stated_consistently() -> None:
    floor = Version(PYPROJECT["project"]["requires-python"].removeprefix(">="))
    assert min(CLASSIFIER_PYTHONS) == floor
    readme = (ROOT / "README.md").read_text()
    assert f"Python {floor} to {max(CLASSIFIER_PYTHONS)}" in readme
    assert Version(f"{sys.version_info.major}.{sys.version_info.minor}") in CLASSIFIER_PYTHONS


def test_readme_claims_exactly_the_lanes() -> None:
    """The README's one-line claim names every lane's Airflow minor, and no other."""
    readme = (ROOT / "README.md").read_text()
    claim = next(line for line in readme.splitlines() if line.startswith("Works on Airflow "))
    stated = set(re.findall(r"\b(\d+\.\d+)\b", claim.split(", Python")[0]))
    assert stated == set(LANES), f"the README claims Airflow {sorted(stated)}; the lanes are {sorted(LANES)}"


@pytest.mark.parametrize("document", COMPAT_TABLE.DOCUMENTS)
def test_compatibility_tables_are_generated_from_the_lane_results(document: str) -> None:
    """The committed tables are what scripts/compat_table.py renders from the committed results."""
    text = (ROOT / document).read_text()
    assert COMPAT_TABLE.rewrite(text, COMPAT_TABLE.render(ROOT), document) == text, (
        f"{document}: the table differs from docs/lanes/*.json; run python scripts/compat_table.py"
    )
