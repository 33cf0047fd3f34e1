"""
Run every benchmark module of this package: each has ``run(smoke: bool) -> list[dict]``.

Prints one table and writes ``bench/results/<name>.json`` per module. ``--smoke`` runs tiny versions
that check their results are sane, so benchmarks cannot rot. ``--only NAME`` runs one module.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def benchmarks() -> list[str]:
    """The names of the modules of this package that define ``run``."""
    names = []
    for info in pkgutil.iter_modules([str(Path(__file__).resolve().parent)]):
        if not info.name.startswith("_") and not info.ispkg:
            names.append(info.name)
    return sorted(names)


def table(rows: list[dict[str, Any]]) -> str:
    """Format rows (dicts) as a plain-text table, columns in first-seen order."""
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; return the exit code (1 if a smoke check failed)."""
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--smoke", action="store_true", help="tiny runs that check results are sane")
    parser.add_argument("--only", action="append", help="run only this benchmark module (repeatable)")
    args = parser.parse_args(argv)
    failed = False
    for name in args.only or benchmarks():
        module = importlib.import_module(f"bench.{name}")
        if not hasattr(module, "run"):
            continue
        started = time.perf_counter()
        try:
            rows: list[dict[str, Any]] = module.run(args.smoke)
        except AssertionError as error:
            print(f"== {name}: FAILED sanity check: {error}", file=sys.stderr)
            failed = True
            continue
        print(f"== {name} ({'smoke' if args.smoke else 'full'}, {time.perf_counter() - started:.1f}s)")
        print(table(rows))
        if not args.smoke:
            RESULTS.mkdir(exist_ok=True)
            (RESULTS / f"{name}.json").write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
