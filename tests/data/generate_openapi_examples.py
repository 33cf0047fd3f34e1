"""
Regenerate ``openapi-examples.json`` from AssemblyAI's OpenAPI spec.

The tests parse the spec's own examples. CI normally has the spec beside the repository
(``../shared/reference/assemblyai-openapi.yml``), but this vendored copy keeps the tests working
without it; ``tests/test_models.py`` checks that the copy still matches the spec when it is present.

Usage (from the repository root)::

    .venv/bin/python tests/data/generate_openapi_examples.py [path/to/assemblyai-openapi.yml]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
SPEC = HERE.parents[1] / ".." / "shared" / "reference" / "assemblyai-openapi.yml"
OUTPUT = HERE / "openapi-examples.json"
SCHEMAS = ("Transcript", "TranscriptList", "TranscriptListItem", "PageDetails")


def extract_examples(spec_path: Path) -> dict[str, Any]:
    """
    Return ``{schema name: example}`` for the schemas the provider parses.

    :param spec_path: the OpenAPI spec (YAML).
    """
    spec = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    schemas = spec["components"]["schemas"]
    return {name: schemas[name]["example"] for name in SCHEMAS}


def main(argv: list[str]) -> None:
    """
    Write the examples to ``openapi-examples.json``.

    :param argv: optionally the spec path.
    """
    spec_path = Path(argv[0]) if argv else SPEC
    examples = extract_examples(spec_path)
    OUTPUT.write_text(json.dumps(examples, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {OUTPUT} ({', '.join(examples)}) from {spec_path}")


if __name__ == "__main__":
    main(sys.argv[1:])
