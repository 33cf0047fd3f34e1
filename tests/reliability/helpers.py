"""Helpers for the reliability suite: DAG folders for ``dag.test()``, and reading what Airflow kept."""

from __future__ import annotations

import os
import re
import shutil
import textwrap
from pathlib import Path
from typing import Any

from tests.example_dags.dag_runner import EXAMPLE_DAGS

#: A distinctive API key: if it shows up anywhere, it leaked.
CANARY_KEY = "sk-LEAK-canary-93f0c1d2e4"

#: Ids that must be refused before any request, with a fragment the error message must contain.
BAD_IDS: list[tuple[object, str]] = [
    ("", "empty"),
    (None, "None"),
    ("   ", "'   '"),
    ("\t\n", r"'\t\n'"),
    ("../x", "'../x'"),
    ("a/b", "'a/b'"),
    ("x?y", "'x?y'"),
    ("x#y", "'x#y'"),
    ("a%2Fb", "'a%2Fb'"),
    ("a%2e%2e", "'a%2e%2e'"),
    ("\u0430bc", "'\u0430bc'"),  # Cyrillic a
    ("5551\u0435f00", "'5551\u0435f00'"),  # Cyrillic e inside a hex-looking id
    ("x" * 10_000, "10000 characters"),
    (12345, "12345"),
    (["abc"], "['abc']"),
    ({"id": "abc"}, "{'id': 'abc'}"),
]
BAD_ID_NAMES = [
    "empty",
    "none",
    "spaces",
    "tab-newline",
    "dotdot",
    "slash",
    "query",
    "fragment",
    "pct-slash",
    "pct-dots",
    "cyrillic-a",
    "cyrillic-e",
    "10k",
    "int",
    "list",
    "dict",
]


def dag_folder(tmp_path: Path, dags: dict[str, str], *, examples: bool = False) -> Path:
    """
    Write DAG files (``{file stem: source}``) into a fresh folder, optionally with the example DAGs.

    :param tmp_path: where to create the folder.
    :param dags: the DAG sources, dedented.
    :param examples: also copy every example DAG into the folder.
    """
    folder = tmp_path / "dags"
    folder.mkdir()
    if examples:
        for source in EXAMPLE_DAGS.glob("*.py"):
            shutil.copy(source, folder / source.name)
    for stem, source in dags.items():
        (folder / f"{stem}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    return folder


def metadata_rows() -> dict[str, list[str]]:
    """Every row of every table of the metadata DB, as text (bytes columns as their repr)."""
    import sqlalchemy as sa
    from airflow import settings

    engine = settings.engine
    assert engine is not None
    meta = sa.MetaData()
    meta.reflect(bind=engine)
    rows: dict[str, list[str]] = {}
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            rows[table.name] = [repr(tuple(row)) for row in conn.execute(sa.select(table))]
    return rows


def trigger_rows() -> list[str]:
    """The trigger table's rows with their kwargs decrypted (stored kwargs are Fernet-encrypted)."""
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session

    with create_session() as session:
        return [f"{row.classpath} {row.kwargs!r}" for row in session.query(Trigger).all()]


def log_files() -> dict[str, str]:
    """Every file under ``$AIRFLOW_HOME/logs``, read as text."""
    home = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow"))
    found: dict[str, str] = {}
    for path in (home / "logs").rglob("*"):
        if path.is_file():
            found[str(path)] = path.read_text(encoding="utf-8", errors="replace")
    return found


def without_airflows_mask_secret_lines(text: str, secret: str) -> str:
    """
    ``text`` without the Task SDK's ``Sending request msg=MaskSecret(value='<secret>')`` debug lines.

    Airflow 3's in-process test supervisor (``dag.test()``, ``airflow dags test``) logs every secret handed
    to ``mask_secret``; 3.0.x does so at the default log level (see test_secrets_cli.py). Only lines of
    exactly that form whose masked value contains ``secret`` (the key itself, or a longer key that embeds
    it) are removed, so the key anywhere else is still found.

    :param text: captured output.
    :param secret: the secret those lines carry.
    """
    line = re.compile(
        r"\[debug\s*\]\s+Sending request\s+(?:loc=\S+\s+)?msg=MaskSecret\(value='[^']*"
        + re.escape(secret)
        + "[^']*'"
    )
    return "\n".join(row for row in text.splitlines() if not line.search(row))


def where(needle: str, haystacks: dict[str, Any]) -> list[str]:
    """The names of the haystacks (strings, or lists of strings) that contain ``needle``."""
    hits = []
    for name, value in haystacks.items():
        texts = value if isinstance(value, list) else [value]
        if any(needle in str(text) for text in texts):
            hits.append(name)
    return hits
