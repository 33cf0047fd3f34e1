#!/usr/bin/env bash
# `make demo`: run the post-ETL example DAG for real (airflow dags test) against the local emulator.
#
#   scripts/demo.sh VENV
#
# Makes a throwaway AIRFLOW_HOME (SQLite, no Airflow examples, dags_folder=example_dags), starts the
# emulator CLI on free loopback ports, picks a completed transcript, runs the DAG, prints the delete
# task's XCom and shows the transcript is deleted. Stops everything it started; exits non-zero if
# any step failed. Traffic goes to 127.0.0.1 only.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${1:?usage: scripts/demo.sh VENV}"
case "$venv" in /*) ;; *) venv="$root/$venv" ;; esac
python="$venv/bin/python"
[[ -x "$python" && -x "$venv/bin/airflow" ]] || { echo "demo: no Airflow venv at $venv (run: make venv)" >&2; exit 1; }

DAG_ID=example_assemblyai_post_etl_cleanup
API_KEY=demo-key
work="$(mktemp -d "${TMPDIR:-/tmp}/assemblyai-demo.XXXXXX")"
emulator_pid=""

cleanup() {
    local status=$?
    if [[ -n "$emulator_pid" ]] && kill -0 "$emulator_pid" 2>/dev/null; then
        kill -TERM "$emulator_pid" 2>/dev/null || true
        wait "$emulator_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
    if [[ $status -eq 0 ]]; then
        echo
        echo "== Demo finished: emulator stopped, temporary Airflow home removed"
    else
        echo
        echo "== Demo FAILED (exit $status); emulator stopped, temporary Airflow home removed" >&2
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

section() { printf '\n== %s\n' "$*"; }
fail() { echo "demo: $*" >&2; exit 1; }
# Run a step quietly into a log file; on failure show the log's tail.
quiet() {
    local log="$1"; shift
    if ! "$@" >"$log" 2>&1; then
        echo "demo: '$*' failed; last lines of its output:" >&2
        tail -n 40 "$log" >&2
        return 1
    fi
}

export PATH="$venv/bin:$PATH"
export AIRFLOW_HOME="$work/airflow-home"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_FOLDER="$root/example_dags"
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
mkdir -p "$AIRFLOW_HOME" "$work/exports"

section "Airflow $("$python" -c 'import airflow; print(airflow.__version__)') in a throwaway home"
echo "AIRFLOW_HOME=$AIRFLOW_HOME (SQLite), dags_folder=example_dags/"
quiet "$work/db-migrate.log" airflow db migrate
echo "airflow db migrate: done"

section "Starting the AssemblyAI emulator (20 seeded US transcripts, key '$API_KEY')"
"$python" -u -m airflow_provider_assemblyai.testing serve --port 0 --seed 20 --api-key "$API_KEY" \
    >"$work/emulator.log" 2>&1 &
emulator_pid=$!
for _ in $(seq 1 600); do
    grep -q '^READY' "$work/emulator.log" && break
    kill -0 "$emulator_pid" 2>/dev/null || { cat "$work/emulator.log" >&2; fail "the emulator exited"; }
    sleep 0.1
done
grep -q '^READY' "$work/emulator.log" || { cat "$work/emulator.log" >&2; fail "the emulator was not READY in 60s"; }
us_url="$(sed -n 's/^US: \(http[^ ]*\).*/\1/p' "$work/emulator.log")"
[[ "$us_url" == http://127.0.0.1:* ]] || fail "could not read the emulator's US URL from its output"
sed -n '/^AssemblyAI emulator/,/^EU:/p' "$work/emulator.log"

export DEMO_BASE_URL="$us_url" DEMO_API_KEY="$API_KEY"
export AIRFLOW_CONN_ASSEMBLYAI_DEFAULT
AIRFLOW_CONN_ASSEMBLYAI_DEFAULT="$("$python" -c '
import json, os
print(json.dumps({"conn_type": "assemblyai", "password": os.environ["DEMO_API_KEY"],
                  "extra": {"region": "us", "base_url": os.environ["DEMO_BASE_URL"]}}))')"
echo "AIRFLOW_CONN_ASSEMBLYAI_DEFAULT points at $us_url (region us)"

section "Picking a completed transcript from the emulator's list endpoint"
transcript_id="$("$python" - <<'PY'
import os, httpx
base, key = os.environ["DEMO_BASE_URL"], os.environ["DEMO_API_KEY"]
page = httpx.get(f"{base}/v2/transcript", params={"status": "completed", "limit": 1},
                 headers={"Authorization": key}, timeout=30).raise_for_status().json()
print(page["transcripts"][0]["id"])
PY
)"
export DEMO_TRANSCRIPT_ID="$transcript_id"
"$python" -W ignore - <<'PY'
import os, httpx
base, key, tid = os.environ["DEMO_BASE_URL"], os.environ["DEMO_API_KEY"], os.environ["DEMO_TRANSCRIPT_ID"]
t = httpx.get(f"{base}/v2/transcript/{tid}", headers={"Authorization": key}, timeout=30).raise_for_status().json()
print(f"GET /v2/transcript/{tid}")
print(f"  status={t['status']}  audio_duration={t['audio_duration']}s  words={len(t['words'] or [])}")
print(f"  text={t['text']!r}")
PY

section "airflow dags test $DAG_ID -c '{\"transcript_id\": \"$transcript_id\", ...}'"
conf="{\"transcript_id\": \"$transcript_id\", \"export_dir\": \"$work/exports\"}"
dags_test_status=0
airflow dags test "$DAG_ID" -c "$conf" >"$work/dags-test.log" 2>&1 || dags_test_status=$?
if [[ $dags_test_status -ne 0 ]]; then
    tail -n 60 "$work/dags-test.log" >&2
    fail "airflow dags test exited with $dags_test_status"
fi
echo "The run's key log lines (of $(wc -l <"$work/dags-test.log")):"
grep -E "Deleted transcript |DagRun Finished" "$work/dags-test.log" \
    | sed -E -e 's/^.*(Deleted transcript [^[]*[^[ ]).*$/  \1/' \
        -e 's/^.*(DagRun Finished: dag_id=[^,]*).*(state=[a-z_]+).*$/  \1, \2/' | uniq
grep -q "Deleted transcript $transcript_id " "$work/dags-test.log" || fail "the delete task did not log a deletion"

section "Task states and the delete task's XCom (read back from the Airflow metadata DB)"
"$python" -W ignore - <<'PY'
import json, os, sys
from airflow.models.dagrun import DagRun
from airflow.utils.session import create_session

dag_id = "example_assemblyai_post_etl_cleanup"
with create_session() as session:
    runs = session.query(DagRun).filter(DagRun.dag_id == dag_id).all()
    if len(runs) != 1:
        sys.exit(f"expected one run of {dag_id}, found {len(runs)}")
    run = runs[0]
    print(f"DagRun {run.run_id}: {run.state}")
    tis = sorted(run.get_task_instances(session=session), key=lambda ti: ti.task_id)
    for ti in tis:
        print(f"  {ti.task_id:<20} {ti.state}")
    deleted = next(ti for ti in tis if ti.task_id == "delete_transcript").xcom_pull(
        task_ids="delete_transcript", session=session
    )
    export = next(ti for ti in tis if ti.task_id == "export_utterances").xcom_pull(
        task_ids="export_utterances", session=session
    )
if str(run.state) != "success" or any(str(ti.state) != "success" for ti in tis):
    sys.exit("the DAG run did not succeed")
print(f"\nexport_utterances XCom: {json.dumps(export)}")
print(f"\ndelete_transcript XCom (return_value, {len(deleted)} fields, exactly as the API returned them):")
print(json.dumps(deleted, indent=2))
if deleted.get("text") != "Deleted by user." or deleted.get("id") != os.environ["DEMO_TRANSCRIPT_ID"]:
    sys.exit("the delete task's XCom is not the deleted transcript")
PY

section "Exported files (written before the delete ran)"
for file in "$work/exports/$transcript_id.txt" "$work/exports/$transcript_id.json"; do
    [[ -s "$file" ]] || fail "missing export $file"
    printf '%s (%s bytes)\n' "${file#"$work"/}" "$(wc -c <"$file")"
done
printf '  %s: %s\n' "$transcript_id.txt" "$(cat "$work/exports/$transcript_id.txt")"

section "GET the transcript again: it is deleted"
"$python" -W ignore - <<'PY'
import os, sys, httpx
base, key, tid = os.environ["DEMO_BASE_URL"], os.environ["DEMO_API_KEY"], os.environ["DEMO_TRANSCRIPT_ID"]
t = httpx.get(f"{base}/v2/transcript/{tid}", headers={"Authorization": key}, timeout=30).raise_for_status().json()
print(f"GET /v2/transcript/{tid}")
for field in ("status", "text", "audio_url", "webhook_url", "words", "utterances", "audio_duration"):
    print(f"  {field:<15} {t[field]!r}")
if t["text"] != "Deleted by user.":
    sys.exit("the transcript is NOT deleted")
PY

