#!/usr/bin/env python3
"""
Regenerate every figure of README.md and docs/*.md from the recorded results, so none is typed by hand.

A figure lives between ``<!-- figures:NAME:start -->`` and ``<!-- figures:NAME:end -->``, inline (a few
words in a sentence) or as a block (a table: the markers on lines of their own); NAME is one of
``FIGURES``, each rendered from one source: ``bench/results/<benchmark>.json`` (``make bench``,
``make test-deployment``), ``docs/lanes/<lane>.json`` (each lane's last run) and
``docs/lanes/make-test.json`` (the last ``make test``'s wall time, recorded by the Makefile). The
compatibility table between ``<!-- compat-table:start -->`` and ``<!-- compat-table:end -->`` is
``scripts/compat_table.py``'s, rewritten here too.

    python scripts/figures.py          # rewrite every figure
    python scripts/figures.py --check  # exit 1 if a committed figure differs from its source
    python scripts/figures.py --clock-start   # make test: note the start in .lanes/make-test.start
    python scripts/figures.py --clock-stop    # make test: write .lanes/make-test.json

Standard library only: it runs with any Python 3.10+.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compat_table

ROOT = Path(__file__).resolve().parents[1]
MARKED = re.compile(
    r"<!-- figures:(?P<name>[a-z0-9-]+):start -->(?P<body>.*?)<!-- figures:(?P=name):end -->", re.DOTALL
)
CLOCK_START = Path(".lanes/make-test.start")
CLOCK_RESULT = Path(".lanes/make-test.json")

Renderer = Callable[[Path], str]
FIGURES: dict[str, Renderer] = {}


def figure(name: str) -> Callable[[Renderer], Renderer]:
    """Register a renderer: ``root -> text`` for the figure ``name``."""

    def register(renderer: Renderer) -> Renderer:
        FIGURES[name] = renderer
        return renderer

    return register


def table_figure(name: str, header: str) -> Callable[[Callable[[Path], list[list[str]]]], Renderer]:
    """Register a table: ``rows_of(root)`` gives its rows, ``header`` its column names (``"a | b"``)."""

    def register(rows_of: Callable[[Path], list[list[str]]]) -> Renderer:
        def render(root: Path) -> str:
            return table(header, rows_of(root))

        FIGURES[name] = render
        return render

    return register


def documents(root: Path = ROOT) -> list[Path]:
    """The documents whose figures are generated: README.md and docs/*.md."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def bench(root: Path, name: str) -> list[dict[str, Any]]:
    """The rows of ``bench/results/<name>.json``."""
    rows: list[dict[str, Any]] = json.loads((root / "bench" / "results" / f"{name}.json").read_text("utf-8"))
    return rows


def row(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    """The one row whose fields equal ``match``."""
    found = [r for r in rows if all(r.get(key) == value for key, value in match.items())]
    if len(found) != 1:
        raise ValueError(f"expected one result row with {match}, found {len(found)}")
    return found[0]


def num(value: float | None, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits, trailing zeros kept (5.70); whole from 10**(digits-1)."""
    if value is None:
        return ""
    if abs(value) >= 10 ** (digits - 1) or float(value).is_integer():
        return f"{round(value):d}"
    return f"{value:#.{digits}g}".rstrip(".")


def count(value: int) -> str:
    """A count with thousands separators: 1,064."""
    return f"{value:,}"


def duration(seconds: float) -> str:
    """``1 h 17 min``, ``13 min 03 s`` or ``47 s``."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def table(header: str, rows: list[list[str]]) -> str:
    """A Markdown table; ``header`` is the column names separated by ``" | "``."""
    columns = header.split(" | ")
    lines = [
        "|" + "|".join(f" {cell} " if cell else " " for cell in cells) + "|" for cells in [columns, *rows]
    ]
    return "\n".join([lines[0], "|" + "---|" * len(columns), *lines[1:]])


def ms(value: float) -> str:
    """Milliseconds as the docs print them: one decimal below 100, whole above, 0 as 0."""
    if value == 0 or isinstance(value, int):
        return str(round(value))
    return f"{value:.1f}" if abs(value) < 100 else f"{value:.0f}"


#: Names in a benchmark's case that the docs set as code: ClassNames (with a .method), httpx.calls(),
#: keyword=arguments and dotted module paths.
CODE_NAME = re.compile(
    r"\b(?:[A-Z][a-z]+){2,}(?:\.\w+)?\b|\bhttpx\.\w+\(\)|\b[a-z]+_\w+=\w+|\b[a-z_]+(?:\.[a-z_]+){2,}\b"
)


def code_names(case: str) -> str:
    """``case`` with its code names in backticks."""
    return CODE_NAME.sub(lambda match: f"`{match[0]}`", case)


def bold(text: str, when: bool) -> str:
    return f"**{text}**" if when else text


# -- make test ------------------------------------------------------------------------------------


@figure("make-test")
def make_test(root: Path) -> str:
    """The last ``make test``'s wall time, from docs/lanes/make-test.json."""
    path = root / "docs" / "lanes" / "make-test.json"
    if not path.exists():
        return "has not been timed yet (the next one records its wall time in `docs/lanes/make-test.json`)"
    run = json.loads(path.read_text("utf-8"))
    return f"took {duration(run['duration_s'])} (started {run['started']}, {run['cpus']} CPUs)"


def clock_start() -> None:
    CLOCK_START.parent.mkdir(parents=True, exist_ok=True)
    CLOCK_START.write_text(f"{time.time():.0f}\n", encoding="utf-8")


def clock_stop() -> None:
    started = float(CLOCK_START.read_text(encoding="utf-8"))
    result = {
        "started": datetime.fromtimestamp(started, timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "duration_s": round(time.time() - started),
        "cpus": os.cpu_count(),
    }
    CLOCK_RESULT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    CLOCK_START.unlink()


# -- purge throughput (bench/results/purge.json) ----------------------------------------------------


@table_figure("purge-summary", "case | N | latency | seconds | metric | value | target")
def purge_summary(root: Path) -> list[list[str]]:
    """README: the purge's targets, c=16 against the SDK loop at both latencies, and the rate limit."""
    rows = bench(root, "purge")
    lines: list[list[str]] = []
    for n, latency in ((800, 100.0), (2000, 20.0)):
        purge = row(rows, case="purge c=16", n=n, latency_ms=latency)
        sdk = row(rows, case="assemblyai SDK loop", n=n, latency_ms=latency)
        lines.append(
            [
                "purge, concurrency 16",
                str(n),
                f"{latency:.0f} ms",
                num(purge["seconds"]),
                "efficiency" if lines else "efficiency (ideal / measured)",
                f"{purge['value']:.2f}",
                ">= 0.85",
            ]
        )
        lines.append(
            [
                "`assemblyai` SDK, `delete_by_id` one by one",
                str(n),
                f"{latency:.0f} ms",
                num(sdk["seconds"]),
                "purge c=16 speed-up",
                f"{sdk['value']:.1f}x",
                ">= 12x",
            ]
        )
    limited = row(rows, case="purge c=16, limit 60/s")
    lines.append(
        [
            "purge c=16, operator and emulator limited to 60 req/s",
            str(limited["n"]),
            f"{limited['latency_ms']:.0f} ms",
            num(limited["seconds"]),
            "rate / limit; 429s",
            str(limited["value"]),
            ">= 0.95; 0",
        ]
    )
    return lines


@figure("purge-cpu-bound")
def purge_cpu_bound(root: Path) -> str:
    """README: the requests/s one core reaches at 20 ms latency."""
    rows = bench(root, "purge")
    c16 = row(rows, case="purge c=16", n=2000, latency_ms=20.0)
    c32 = row(rows, case="purge c=32", n=2000, latency_ms=20.0)
    return f"{num(c16['req_per_s'])} requests/s at concurrency 16 and {num(c32['req_per_s'])} at 32"


@table_figure("purge-table", "case | N | latency ms | seconds | requests/s | metric | value | target")
def purge_table(root: Path) -> list[list[str]]:
    """docs/performance.md: every row of bench/results/purge.json."""
    lines: list[list[str]] = []
    for r in bench(root, "purge"):
        targeted = r["target"] is not None
        if isinstance(r["value"], str):
            value = r["value"]
        else:
            value = f"{r['value']:.1f}x" if "speed-up" in r["metric"] else f"{r['value']:.2f}"
        lines.append(
            [
                r["case"],
                str(r["n"]),
                num(r["latency_ms"]),
                num(r["seconds"]),
                num(r["req_per_s"]),
                r["metric"],
                bold(value, targeted),
                (r["target"] or "").replace(">=", ">= "),
            ]
        )
    return lines


# -- trigger fan-in (bench/results/triggers.json) ---------------------------------------------------

OURS = "TranscriptStatusTrigger (this provider)"
HTTP = "HttpEventTrigger + response_check (HTTP provider)"


@table_figure(
    "trigger-summary",
    ("case, over TLS | CPU s | peak RSS growth | requests | TCP connections | event lag p50 / max"),
)
def trigger_summary(root: Path) -> list[list[str]]:
    """README: ours against the HTTP provider's trigger, over TLS."""
    rows = bench(root, "triggers")
    lines: list[list[str]] = []
    for case, label in (
        (OURS, "`TranscriptStatusTrigger` (this provider)"),
        (HTTP, "`HttpEventTrigger` (HTTP provider)"),
    ):
        r = row(rows, case=f"{case}, https")
        lines.append(
            [
                label,
                num(r["cpu_s"], 2 if r["cpu_s"] < 10 else 3),
                f"{num(r['rss_growth_mb'], 2)} MB",
                count(r["requests"]),
                count(r["tcp_connections"]),
                f"{num(r['event_lag_p50_s'], 2)} s / {num(r['event_lag_max_s'], 2)} s",
            ]
        )
    return lines


@table_figure(
    "trigger-table",
    (
        "case (1,000 triggers, 2 s polls) | events right | wall s | CPU s | RSS growth MB | "
        "event lag p50 / max s | requests | transcript gets | list pages | TCP connections"
    ),
)
def trigger_table(root: Path) -> list[list[str]]:
    """docs/performance.md: every row of bench/results/triggers.json."""
    return [
        [
            code_names(r["case"]),
            str(r["events_right"]),
            num(r["wall_s"]),
            bold(num(r["cpu_s"]), r["case"].startswith(OURS)),
            num(r["rss_growth_mb"]),
            f"{r['event_lag_p50_s']:.2f} / {r['event_lag_max_s']:.2f}",
            str(r["requests"]),
            str(r["transcript_gets"]),
            str(r["list_pages"]),
            str(r["tcp_connections"]),
        ]
        for r in bench(root, "triggers")
    ]


# -- DAG parse cost and task overhead (parse_cost.json, task_overhead.json) --------------------------


@figure("parse-and-overhead")
def parse_and_overhead(root: Path) -> str:
    """README: one sentence on parse cost and per-task overhead."""
    parse = bench(root, "parse_cost")
    ours = row(parse, case="DeleteTranscriptOperator (this provider)")
    http = row(parse, case="HttpOperator (HTTP provider)")
    overhead = bench(root, "task_overhead")
    purge = row(overhead, case="dag.test(): one PurgeTranscriptsOperator, 100 ids")
    mapped = row(overhead, case="dag.test(): 100 mapped DeleteTranscriptOperator tasks")
    return (
        f"DAG parse cost (importing `DeleteTranscriptOperator` costs {num(ours['import_ms'], 2)} ms beyond "
        f"`airflow.sdk`, `HttpOperator` {num(http['import_ms'])} ms) and per-task overhead (one purge of "
        f"{purge['calls']} ids: {num(purge['dag_test_wall_s'], 2)} s; {mapped['calls']} mapped delete tasks: "
        f"{num(mapped['dag_test_wall_s'])} s in `dag.test()`)"
    )


@table_figure(
    "parse-table",
    (
        "case | import ms | modules added | "
        "provider modules ms | compat.sdk ms | define ms | imports while defining"
    ),
)
def parse_table(root: Path) -> list[list[str]]:
    """docs/performance.md: bench/results/parse_cost.json."""
    lines: list[list[str]] = []
    for r in bench(root, "parse_cost"):
        label = code_names(r["case"])
        defined = r["define_ms"] is not None
        imports = (
            ((r["define_top_imports"] in (None, "", "gc") and "none") or r["define_top_imports"])
            if defined
            else ""
        )
        lines.append(
            [
                label,
                bold(
                    ms(r["import_ms"]),
                    r["case"].endswith("(this provider)") or r["case"].startswith("HttpOp"),
                ),
                str(r["modules_added"]),
                ms(r["provider_modules_ms"]),
                ms(r["compat_sdk_ms"]),
                "" if r["define_ms"] is None else ms(r["define_ms"]),
                imports,
            ]
        )
    return lines


@table_figure(
    "overhead-table",
    "case | requests per call | ms per call | CPU ms per call | overhead vs. round trip ms",
)
def overhead_table(root: Path) -> list[list[str]]:
    """docs/performance.md: the per-call rows of bench/results/task_overhead.json."""
    return [
        [
            code_names(r["case"]),
            r["requests"].replace("+", " + "),
            num(r["ms_per_call"]),
            num(r["cpu_ms_per_call"]),
            bold(ms(r["overhead_ms"]), r["case"].startswith("DeleteTranscriptOperator")),
        ]
        for r in bench(root, "task_overhead")
        if "dag_test_wall_s" not in r
    ]


@table_figure("dag-test-table", "`dag.test()` run | wall s | per deletion")
def dag_test_table(root: Path) -> list[list[str]]:
    """docs/performance.md: the ``dag.test()`` rows of bench/results/task_overhead.json."""
    return [
        [
            code_names(r["case"].removeprefix("dag.test(): ")),
            bold(num(r["dag_test_wall_s"], 2 if r["dag_test_wall_s"] < 1 else 3), "Purge" in r["case"]),
            f"{num(r['ms_per_call'], 2 if r['ms_per_call'] < 10 else 3)} ms",
        ]
        for r in bench(root, "task_overhead")
        if "dag_test_wall_s" in r
    ]


# -- event watcher (bench/results/events.json) ------------------------------------------------------


@figure("event-poll-cost")
def event_poll_cost(root: Path) -> str:
    """README: what one poll of the event watcher costs against re-listing the window."""
    rows = bench(root, "events")
    ours = row(rows, case="TranscriptEventTrigger (this provider)")
    naive = row(rows, case="naive: re-list the window every poll")
    most, pages = ours["requests_per_poll_max"], ours["list_pages_per_poll_max"]
    every = "second" if ours["poll_interval_s"] == 1 else f"{num(ours['poll_interval_s'])} s"
    return (
        f"with {count(ours['window_transcripts'])} transcripts in the window, {ours['finishing']} of them "
        f"finishing, polled every {every}, a poll cost "
        f"{num(ours['requests_per_poll_median'])} requests (median; at most {most}: {pages} list pages and "
        f"{most - pages} GETs) and an idle one {ours['idle_poll_requests']}, where re-listing the window "
        f"costs {num(naive['requests_per_poll_median'])} every poll"
    )


@table_figure(
    "event-table",
    (
        "watcher | events right | first poll | "
        "requests per poll, median / max | list pages per poll, max | idle poll | transcript GETs"
    ),
)
def event_table(root: Path) -> list[list[str]]:
    """docs/performance.md: bench/results/events.json, the provider's watcher in bold."""
    return [event_row(r, ours="this provider" in r["case"]) for r in bench(root, "events")]


def event_row(r: dict[str, Any], ours: bool) -> list[str]:
    """One watcher's row of the event table."""
    return [
        code_names(r["case"]),
        f"{r['events_right']} / {r['finishing']}",
        str(r["first_poll_requests"]),
        bold(f"{num(r['requests_per_poll_median'])} / {r['requests_per_poll_max']}", ours),
        str(r["list_pages_per_poll_max"]),
        bold(str(r["idle_poll_requests"]), ours),
        str(r["transcript_gets"]),
    ]


# -- production-shaped deployment (bench/results/deployment.json) -----------------------------------


@figure("deployment-summary")
def deployment_summary(root: Path) -> str:
    """docs/deployment.md: the run's one-line summary, as the run printed it."""
    run = json.loads((root / "bench" / "results" / "deployment.json").read_text("utf-8"))
    return f"```\n{run['summary']}\n```"


@table_figure("deployment-table", "Figure | Value")
def deployment_table(root: Path) -> list[list[str]]:
    """docs/deployment.md: the figures of the last ``make test-deployment`` run."""
    run = json.loads((root / "bench" / "results" / "deployment.json").read_text("utf-8"))
    workloads = run["requests_by_workload"]
    held, killed = run["triggers_held"], run["triggerer_killed"]
    mean = run["task_seconds_mean"]
    purge = run["purge"]
    cpu = dict(sorted(run["cpu_s"].items(), key=lambda item: -item[1]))
    rows = [
        ["wall time: services, migration, 7 Airflow processes, the runs, the checks, teardown",
         f"{num(run['wall_s'])} s (startup {num(run['startup_s'])} s, "
         f"the three runs {num(run['runs_s'])} s)"],
        ["requests the emulator served, of them 429",
         f"{count(run['requests'])}, {run['rate_limited']}; every 429 retried, the longest run of 429s "
         f"for one request: {run['longest_429_streak']}"],
        ["busiest wall-clock second (requests, 429s included)", str(run["peak_requests_per_s"])],
        ["requests (429s) per workload",
         ", ".join(f"{name.replace('_', ' ')} {count(w['requests'])} ({w['429']})"
                   for name, w in sorted(workloads.items(), key=lambda item: -item[1]["requests"]))],
        ["the purge retry's speed (concurrency 16, CPU-bound worker)",
         f"{num(run['purge_retry_deletes_per_s'])} deletions/s"],
        ["GETs per sensor transcript (first poke, polls, resumed sensor, export, delete)",
         num(run["sensor_gets_per_transcript"])],
        ["status board listings", str(run["board_listings"])],
        ["triggers held when the triggerer was killed",
         " and ".join(f"{n} (killed)" if name == killed else str(n) for name, n in held.items())],
        ["failover: kill to no trigger left on the dead triggerer (health-check threshold 5 s)",
         f"{run['failover']:.1f} s"],
        ["purge: deleted by the killed attempt / audited by it / deleted by the retry",
         " / ".join(str(purge[key]) for key in
                    ("deleted_by_first_attempt", "audited_by_first_attempt", "deleted_by_retry"))],
        ["tasks; tasks that needed a second try (the ones on the killed worker)",
         f"{run['tasks']}; {run['tasks_retried_after_worker_kill']}"],
        ["mean task duration: mapped delete, chain export, chain delete, purge retry",
         ", ".join(f"{mean[key]:.1f} s" for key in
                   ("delete", "wait_export_delete.export", "wait_export_delete.delete", "purge"))],
        [f"CPU seconds: {', '.join(process_label(name, run) for name in cpu)}",
         ", ".join(f"{seconds:.1f}" for seconds in cpu.values())],
        ["places searched for the key", str(run["places_checked_for_the_key"])],
    ]  # fmt: skip
    return rows


def process_label(name: str, run: dict[str, Any]) -> str:
    """A deployment process as the docs name it: the killed worker since its restart, the triggerer left."""
    if name == run["worker_killed"]:
        return f"{name} (since its restart)"
    if name.startswith("triggerer"):
        return f"{name} (the surviving triggerer)"
    return {"postgres": "PostgreSQL", "redis": "Redis"}.get(name, name)


# -- the purge audit (bench/results/audit.json) -----------------------------------------------------


#: The docs' words for the cases of bench/audit.py.
AUDIT_CASES = {
    "scan c=16, no audit": "scan, no audit",
    "scan c=16, audit local": "scan, audit on local files",
    "scan c=16, audit s3": "scan, audit on S3 (moto)",
    "ids c=16, no audit": "explicit ids, no audit",
    "ids c=16, audit local": "explicit ids, audit on local files",
    "ids c=16, audit s3": "explicit ids, audit on S3 (moto)",
    "scan c=16, 60/s, audit s3": "scan held to 60 DELETEs/s, S3",
    "60/s, store +1.5s/part (s3)": "the same, each part 1.5 s slower to store",
}
AUDIT_COLUMNS = "case | n | median s | deleted/s | parts (last run) | longest wait | median wait (per part)"


@table_figure("audit-table", f"{AUDIT_COLUMNS} | time vs no audit")
def audit_table(root: Path) -> list[list[str]]:
    """docs/reliability.md: the purge audit's cost and the longest a line waited to be stored."""
    lines: list[list[str]] = []
    for r in bench(root, "audit"):
        if "lines" not in r:  # reading the audit back
            store = "S3 " if "s3" in r["case"] else ""
            label = f"`read_audit` of the {count(r['n'])}-transcript {store}audit ({r['parts']} parts)"
            lines.append([label, f"{count(r['n'])} records", f"{r['seconds']:.2f}", "", "", "", "", ""])
            continue
        waited = r["max_wait_s"] is not None
        lines.append(
            [AUDIT_CASES.get(r["case"], r["case"]), count(r["n"]), f"{r['seconds']:.1f}",
             f"{r['deleted_per_s']:.0f}", str(r["parts"] or ""),
             bold(f"{r['max_wait_s']:.2f} s", True) if waited else "",
             f"{r['p50_wait_s']:.2f} s" if waited else "",
             f"{r['vs_no_audit']:.2f}" if r.get("vs_no_audit") is not None else ""]
        )  # fmt: skip
    return lines


# -- rewriting -------------------------------------------------------------------------------------


def render_document(text: str, root: Path = ROOT, name: str = "document") -> str:
    """``text`` with every marked figure regenerated (an inline figure stays inline, a block a block)."""

    def replace(match: re.Match[str]) -> str:
        figure_name = match["name"]
        if figure_name not in FIGURES:
            raise ValueError(f"{name}: unknown figure {figure_name!r}; known: {', '.join(sorted(FIGURES))}")
        body = FIGURES[figure_name](root)
        body = f"\n{body}\n" if match["body"].startswith("\n") else body
        return f"<!-- figures:{figure_name}:start -->{body}<!-- figures:{figure_name}:end -->"

    text = MARKED.sub(replace, text)
    if compat_table.START in text:
        text = compat_table.rewrite(text, compat_table.render(root), name)
    return text


#: A measured-looking figure: a duration, a size, a rate or a speed-up.
FIGURE_PATTERN = re.compile(
    r"\b\d[\d,]*(?:\.\d+)?\s?(?:h|min|minutes?|s|seconds?|ms|µs|MB|MiB|GB|KiB|x|requests?/s|req/s|%)(?![\w/])"
)
#: Numbers in README prose that are not measurements: parameters, limits and design bounds.
NOT_MEASURED = (
    "2 s interval",  # the sensors' poke interval in an example
    "66 requests/s",  # AssemblyAI's documented account limit
    "60 req/s",  # the benchmark's configured rate limit
    "At 20 ms",  # the benchmark's configured latency
    "5 s while",  # the audit's design bound: a part is stored at least every second
    "2 s per part",  # ... as long as the store takes under 2 s (docs/reliability.md)
    "30 seconds",  # an example of an ambiguous duration
)


def unmarked_figures(text: str) -> list[str]:
    """
    The figures of ``text`` outside markers, code (fenced blocks and inline spans) and ``NOT_MEASURED``.

    :param text: a Markdown document.
    """
    text = MARKED.sub("", text)
    text = re.sub(
        re.escape(compat_table.START) + ".*?" + re.escape(compat_table.END), "", text, flags=re.DOTALL
    )
    text = re.sub(r"^```.*?^```", "", text, flags=re.DOTALL | re.MULTILINE)
    text = re.sub(r"`[^`\n]*`", "", text)
    text = re.sub(r"\s+", " ", text)
    for allowed in NOT_MEASURED:
        text = text.replace(allowed, "")
    return FIGURE_PATTERN.findall(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if a document's figures are out of date")
    parser.add_argument("--clock-start", action="store_true", help="note the start of make test")
    parser.add_argument("--clock-stop", action="store_true", help="record make test's wall time")
    args = parser.parse_args(argv)
    if args.clock_start or args.clock_stop:
        clock_start() if args.clock_start else clock_stop()
        return 0
    stale = []
    for path in documents():
        text = path.read_text(encoding="utf-8")
        updated = render_document(text, ROOT, path.name)
        if updated != text:
            stale.append(str(path.relative_to(ROOT)))
            if not args.check:
                path.write_text(updated, encoding="utf-8")
    if args.check and stale:
        print(f"out of date: {', '.join(stale)}; run python scripts/figures.py", file=sys.stderr)
        return 1
    if not args.check:
        print(f"rewrote {', '.join(stale)}" if stale else "figures already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
