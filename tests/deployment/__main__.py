"""
``make test-deployment``: the provider in a production-shaped Airflow, with faults, on loopback.

Real processes only, in a throwaway directory: PostgreSQL (metadata database), Redis (Celery broker),
Airflow 3 with the CeleryExecutor (scheduler, dag-processor, api-server, two Celery workers of 4 slots,
two triggerers) and the AssemblyAI emulator in its own process with an account rate limit below the
combined demand. Three DAG runs at once:

1. mapped ``DeleteTranscriptOperator`` tasks over US and EU transcripts (one connection per region);
2. per transcript, a deferrable ``TranscriptSensor``, an export and a delete; the transcripts finish
   at staggered times over about a minute, so the triggerers' status board is in use;
3. a ``PurgeTranscriptsOperator`` of the EU region's old transcripts, with an audit file, beside
   recent, in-flight and already-deleted ones and old US ones that it must not touch.

Faults, at moments chosen by watching the database and the emulator's request log: once every
sensor waits in a triggerer, the triggerer holding most of them is SIGKILLed (the other adopts its
triggers); once the purge has deleted ``PURGE_KILL_AFTER`` transcripts, the Celery worker running it
is SIGKILLed with all its processes (the scheduler fails the task and retries it on the other worker).

Then everything is checked from the emulator's request log, the audit files, XCom and the database,
one summary line starting ``deployment:`` is printed, the figures are written as JSON (``--result``),
every process is stopped and the directory removed, also on failure or interruption. Exit code 1 on
any failed check.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import FrameType
from typing import Any

import psutil
from cryptography.fernet import Fernet

from tests.deployment import checks
from tests.deployment.cluster import TRIGGERERS, WORKER_CONCURRENCY, WORKERS, CeleryCluster
from tests.deployment.services import EmulatorProcess, Postgres, Redis
from tests.e2e.airflow_runner import kill_processes, process_tree

DAGS = Path(__file__).resolve().parent / "dags"
DELETE_DAG, SENSOR_DAG, PURGE_DAG = (
    "deployment_mapped_delete",
    "deployment_wait_export_delete",
    "deployment_purge",
)
SENSOR_TASK, SENSOR_DELETE_TASK = "wait_export_delete.wait", "wait_export_delete.delete"

MAPPED_DELETES = 50  # half US, half EU
SENSORS = 50  # US: one account on each triggerer, so the status board kicks in (>= 20 waiting)
SENSOR_FINISH_SPREAD_S = 60.0
PURGE_OLD = 1000  # EU, created 8 to 80 days ago: 900 completed, 100 error
PURGE_ALREADY_DELETED = 20  # EU, old, deleted before the run: counted, never deleted again
PURGE_IN_FLIGHT = 30  # EU, old, queued or processing: never deleted
PURGE_RECENT = 50  # EU, created after the cutoff
OTHER_REGION_OLD = 100  # US, old: another region than the purge's connection
CUTOFF = timedelta(days=7)
PURGE_KILL_AFTER = 300  # deletions seen by the emulator before the purge's worker is killed
RATE_LIMIT = (12, 0.2)  # the emulator's account limit: 60 requests/s, in bursts of at most 12
RUN_TIMEOUT_S = 600.0


class Failed(Exception):
    """One or more checks failed (the message lists them)."""


class Deployment:
    """
    One run: services, Airflow, workloads, faults, checks.

    :param workdir: the throwaway directory (removed by the caller).
    :param stack: where every started service registers its stop.
    """

    def __init__(self, workdir: Path, stack: contextlib.ExitStack) -> None:
        self.workdir = workdir
        self.stack = stack
        self.api_key = f"sk-deploy-canary-{secrets.token_hex(12)}"
        self.started = time.monotonic()
        self.problems: list[str] = []
        self.figures: dict[str, Any] = {}
        self.kill_times: dict[str, float] = {}
        self.secrets_seen: dict[str, str | bytes] = {}
        #: Task instances (dag_id, task_id, map_index) running, or queued, when their worker was killed.
        self.collateral: set[tuple[str, str, int]] = set()
        self.maybe_collateral: set[tuple[str, str, int]] = set()

    def say(self, message: str) -> None:
        """One progress line (seconds since the start)."""
        print(f"[{time.monotonic() - self.started:6.1f}s] {message}", flush=True)

    # -- setup ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start PostgreSQL, Redis, the emulator and Airflow."""
        self.postgres = self.stack.enter_context(Postgres(self.workdir / "postgres")).start()
        self.redis = self.stack.enter_context(Redis(self.workdir / "redis")).start()
        self.emulator = self.stack.enter_context(
            EmulatorProcess(self.workdir / "emulator", self.api_key, RATE_LIMIT)
        ).start()
        connections = {f"assemblyai_{region}": self.emulator.connection(region) for region in ("us", "eu")}
        self.cluster = CeleryCluster(self.workdir / "airflow", self.postgres, self.redis, connections)
        self.stack.callback(self.cluster.stop)
        for dag in DAGS.glob("*.py"):
            self.cluster.dags.mkdir(parents=True, exist_ok=True)
            shutil.copy(dag, self.cluster.dags / dag.name)
        self.say(f"PostgreSQL :{self.postgres.port}, Redis :{self.redis.port}, emulator {self.emulator.urls}")
        self.cluster.migrate()
        self.say("metadata database migrated")
        self.cluster.start_components()
        self.say("Airflow up: api-server, scheduler, dag-processor, 2 Celery workers, 2 triggerers")
        for dag_id in (DELETE_DAG, SENSOR_DAG, PURGE_DAG):
            self.cluster.wait_for_dag(dag_id, timeout=180)
        self.figures["startup_s"] = round(time.monotonic() - self.started, 1)

    def seed(self) -> dict[str, Any]:
        """Create every transcript of the three workloads; return each DAG run's conf."""
        now = datetime.now(timezone.utc)

        def old(i: int) -> str:  # spread from 8 to 80 days old
            return (now - timedelta(days=8 + 72 * i / PURGE_OLD)).isoformat()

        em = self.emulator
        self.deletes = {
            region: em.create(region, [{"status": "completed", "count": MAPPED_DELETES // 2}])
            for region in ("us", "eu")
        }
        self.sensor_ids = em.create("us", [{"status": "processing", "count": SENSORS}])
        self.purge_ids = em.create(
            "eu",
            [
                {"status": "error" if i % 10 == 0 else "completed", "created": old(i)}
                for i in range(PURGE_OLD)
            ],
        )
        self.untouchable = {
            "eu": em.create(
                "eu",
                [{"created": old(i), "deleted": True} for i in range(PURGE_ALREADY_DELETED)]
                + [
                    {"status": "processing" if i % 3 else "queued", "created": old(i)}
                    for i in range(PURGE_IN_FLIGHT)
                ]
                + [{"created": (now - timedelta(days=2)).isoformat(), "count": PURGE_RECENT}],
            ),
            "us": em.create("us", [{"created": old(i)} for i in range(OTHER_REGION_OLD)]),
        }
        self.audit_dir = self.workdir / "audit"
        self.audit_uri = (self.audit_dir / "purge.jsonl").as_uri()
        self.export_dir = self.workdir / "exports"
        self.export_dir.mkdir()
        return {
            DELETE_DAG: {
                "deletions": [
                    {"transcript_id": tid, "assemblyai_conn_id": f"assemblyai_{region}"}
                    for region, ids in self.deletes.items()
                    for tid in ids
                ]
            },
            SENSOR_DAG: {"transcript_ids": self.sensor_ids, "export_dir": str(self.export_dir)},
            PURGE_DAG: {
                "created_before": (now - CUTOFF).isoformat(),
                "audit_path": self.audit_uri,
            },
        }

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> None:
        """Trigger the three runs at once, inject the faults when their moment comes, wait for the end."""
        confs = self.seed()
        self.say("transcripts seeded; triggering the three DAG runs")
        self.triggered = time.monotonic()
        for dag_id, conf in confs.items():
            self.cluster.api(
                "POST",
                f"/dags/{dag_id}/dagRuns",
                {"dag_run_id": "deployment", "logical_date": None, "conf": conf},
            )
        deadline = self.triggered + RUN_TIMEOUT_S
        while True:
            self.cluster.check_alive()
            for service in (self.postgres, self.redis, self.emulator):
                service.check_alive()
            if "triggerer" not in self.kill_times and self._sensors_all_deferred():
                self._kill_triggerer()
            if "triggerer" in self.kill_times and "failover" not in self.figures:
                self._watch_failover()
            if "worker" not in self.kill_times and self._purge_deletions() >= PURGE_KILL_AFTER:
                self._kill_purge_worker()
            if "worker" in self.kill_times and "worker_restarted" not in self.figures:
                self._restart_worker_once_the_retry_runs()
            states = dict(self.cluster.query("SELECT dag_id, state FROM dag_run"))
            if all(state in ("success", "failed") for state in states.values()) and len(states) == 3:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the runs did not finish in {RUN_TIMEOUT_S:.0f}s: {states}, tasks "
                    f"{self._task_states()}\n{self.cluster.logs_tail(1500)}"
                )
            time.sleep(0.5)
        self.figures["runs_s"] = round(time.monotonic() - self.triggered, 1)
        self.figures["cpu_s"] = self._cpu_seconds()
        self.say(f"runs finished: {states}; checking")

    def _cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used so far by each component, its children included (tasks run in the workers')."""
        services = {"postgres": self.postgres, "redis": self.redis, "emulator": self.emulator}
        roots = {name: p.pid for name, p in self.cluster.processes.items()}
        roots.update({name: s.process.pid for name, s in services.items() if s.process is not None})
        used = {}
        for name, pid in roots.items():
            seconds = 0.0
            for process in process_tree(pid):
                with contextlib.suppress(psutil.NoSuchProcess):
                    t = process.cpu_times()
                    seconds += t.user + t.system + t.children_user + t.children_system
            used[name] = round(seconds, 1)
        return used

    def _task_states(self) -> dict[str, int]:
        rows = self.cluster.query("SELECT dag_id, task_id, state FROM task_instance")
        return dict(Counter(f"{dag}.{task}:{state}" for dag, task, state in rows))

    def _sensors_all_deferred(self) -> bool:
        deferred = self.cluster.query(
            "SELECT count(*) FROM task_instance WHERE dag_id = %s AND task_id = %s AND state = 'deferred'",
            SENSOR_DAG,
            SENSOR_TASK,
        )[0][0]
        assigned = self.cluster.query("SELECT count(*) FROM trigger WHERE triggerer_id IS NOT NULL")[0][0]
        return bool(deferred == SENSORS and assigned == SENSORS)

    def _triggers_by_triggerer(self) -> dict[int | None, int]:
        return dict(self.cluster.query("SELECT triggerer_id, count(*) FROM trigger GROUP BY triggerer_id"))

    def _kill_triggerer(self) -> None:
        """SIGKILL the triggerer holding most sensors, then let the transcripts finish over a minute."""
        held = self._triggers_by_triggerer()
        by_name = {name: held.get(job, 0) for name, job in self.cluster.triggerer_jobs.items()}
        victim = max(by_name, key=lambda name: by_name[name])
        self.victim_job = self.cluster.triggerer_jobs[victim]
        self.adopted = {  # the sensors (map indexes) whose trigger the other triggerer must take over
            index
            for (index,) in self.cluster.query(
                "SELECT ti.map_index FROM task_instance ti JOIN trigger t ON ti.trigger_id = t.id "
                "WHERE t.triggerer_id = %s",
                self.victim_job,
            )
        }
        self._sample_secrets("while the sensors wait")
        kill_processes(process_tree(self.cluster.processes[victim].pid))
        self.kill_times["triggerer"] = time.time()
        self.cluster.forget(victim)
        self.say(f"SIGKILLed {victim}, which held {by_name[victim]} of the {SENSORS} waiting sensors")
        self.figures["triggers_held"] = by_name
        self.figures["triggerer_killed"] = victim
        for i, tid in enumerate(self.sensor_ids):
            delay = 2 + SENSOR_FINISH_SPREAD_S * i / (SENSORS - 1)
            self.emulator.admin("POST", "us", f"transcripts/{tid}/finish", {"in_seconds": delay})

    def _watch_failover(self) -> None:
        """Failover is over once no trigger is left on the dead triggerer."""
        held = self._triggers_by_triggerer()
        if held.get(self.victim_job, 0) == 0:
            self.figures["failover"] = round(time.time() - self.kill_times["triggerer"], 1)
            self.say(f"the other triggerer took over after {self.figures['failover']}s")

    def _purge_deletions(self) -> int:
        purge = {("eu", tid) for tid in self.purge_ids}
        return sum(1 for key in checks.successful_deletions(self.emulator.requests()) if key in purge)

    def _kill_purge_worker(self) -> None:
        """SIGKILL the Celery worker running the purge (the host the task reports), with all its processes."""
        [(host,)] = self.cluster.query(
            "SELECT hostname FROM task_instance WHERE dag_id = %s AND task_id = 'purge'", PURGE_DAG
        )
        [victim] = [name for name in WORKERS if self.cluster.hostname(name) == host]
        running = self.cluster.query(
            "SELECT dag_id, task_id, map_index, state, hostname FROM task_instance "
            "WHERE state IN ('running', 'queued')"
        )
        self._sample_secrets("while the purge runs")
        kill_processes(process_tree(self.cluster.processes[victim].pid))
        self.kill_times["worker"] = time.time()
        self.cluster.forget(victim)
        # The tasks the dead worker was running, and those queued then (it may have taken one).
        self.collateral = {(d, t, m) for d, t, m, state, h in running if state == "running" and h == host}
        self.maybe_collateral = {(d, t, m) for d, t, m, state, _ in running if state == "queued"}
        self.figures["worker_killed"] = victim
        self.figures["purge_deleted_before_kill"] = self._purge_deletions()
        self.say(
            f"SIGKILLed {victim} running the purge after {self.figures['purge_deleted_before_kill']} "
            "deletions "
            f"({len(self.collateral)} tasks were running there)"
        )

    def _restart_worker_once_the_retry_runs(self) -> None:
        """Bring the dead worker back (as its supervisor would) once the purge's retry runs elsewhere."""
        rows = self.cluster.query(
            "SELECT try_number, state, hostname FROM task_instance WHERE dag_id = %s AND task_id = 'purge'",
            PURGE_DAG,
        )
        victim = self.figures["worker_killed"]
        [(tries, state, host)] = rows
        if tries > 1 and state in ("running", "success") and host != self.cluster.hostname(victim):
            self.figures["purge_retry_on"] = next(n for n in WORKERS if self.cluster.hostname(n) == host)
            self.cluster.launch_component(victim)
            self.figures["worker_restarted"] = round(time.time() - self.kill_times["worker"], 1)
            self.say(f"the purge's retry runs on {self.figures['purge_retry_on']}; restarted {victim}")

    def _sample_secrets(self, when: str) -> None:
        """Keep Redis's keys and values and the decrypted trigger rows, to look for the key later."""
        self.secrets_seen[f"Redis keys and values {when}"] = self.redis.dump()
        fernet = Fernet(self.cluster.fernet_key.encode())
        rows = self.cluster.query("SELECT classpath, kwargs FROM trigger")
        # Airflow 3.3 stores the kwargs of a task's trigger as plain JSON; decrypt any that are not.
        decrypted = [
            f"{path} {kwargs if kwargs.startswith('{') else fernet.decrypt(kwargs.encode()).decode()}"
            for path, kwargs in rows
        ]
        self.secrets_seen[f"trigger rows (decrypted) {when}"] = "\n".join(decrypted)
        self.figures[f"trigger rows {when}"] = len(rows)

    # -- checks ----------------------------------------------------------------------------------

    def check(self, ok: bool, message: str) -> None:
        """Record a failed check (all are reported together)."""
        if not ok:
            self.problems.append(message)

    def verify(self) -> None:
        """Every assertion of the issue, from the request log, the audit, XCom and the database."""
        requests = self.emulator.requests()
        self.check("triggerer" in self.kill_times, "the sensors never all waited in the triggerers")
        self.check("worker" in self.kill_times, "the purge finished before its worker could be killed")
        if self.problems:
            raise Failed("\n".join(f"- {p}" for p in self.problems))
        self._verify_runs()
        self._verify_deletions(requests)
        self._verify_purge(requests)
        self._verify_sensors(requests)
        self._verify_rate_limits(requests)
        self._verify_no_key_anywhere()
        self._traffic_figures(requests)
        if self.problems:
            raise Failed("\n".join(f"- {p}" for p in self.problems))

    def _verify_runs(self) -> None:
        for dag_id, state in self.cluster.query("SELECT dag_id, state FROM dag_run"):
            self.check(state == "success", f"DAG run {dag_id} ended {state}")
        rows = self.cluster.query("SELECT dag_id, task_id, map_index, state, try_number FROM task_instance")
        failed = [(d, t, m, s) for d, t, m, s, _ in rows if s != "success"]
        self.check(not failed, f"task instances not successful: {failed[:10]}")
        retried = {(d, t, m) for d, t, m, _, tries in rows if tries > 1}
        self.check((PURGE_DAG, "purge", -1) in retried, "the purge was not retried after its worker died")
        unexplained = retried - self.collateral - self.maybe_collateral
        self.check(
            not unexplained,
            f"tasks retried that did not run on the killed worker (a 429 surfaced?): {sorted(unexplained)}",
        )
        self.figures["tasks"] = len(rows)
        self.figures["task_seconds_mean"] = {
            task: round(float(seconds), 1)
            for task, seconds in self.cluster.query(
                "SELECT task_id, avg(extract(epoch FROM end_date - start_date)) FROM task_instance "
                "WHERE state = 'success' GROUP BY task_id ORDER BY task_id"
            )
        }
        self.figures["tasks_retried_after_worker_kill"] = len(retried)

    def _verify_deletions(self, requests: list[dict[str, Any]]) -> None:
        deleted = checks.successful_deletions(requests)
        expected = {("us", t) for t in self.sensor_ids} | {("eu", t) for t in self.purge_ids}
        expected |= {(region, t) for region, ids in self.deletes.items() for t in ids}
        self.check(
            set(deleted) == expected,
            f"deleted {len(deleted)} transcripts, expected {len(expected)}: "
            f"missing {sorted(expected - set(deleted))[:5]}, "
            f"unexpected {sorted(set(deleted) - expected)[:5]}",
        )
        untouchable = {(region, t) for region, ids in self.untouchable.items() for t in ids}
        touched = {
            (r["region"], checks.transcript_id(r))
            for r in requests
            if r["method"] == "DELETE" and (r["region"], checks.transcript_id(r)) in untouchable
        }
        self.check(
            not touched, f"DELETE sent for transcripts the purge must not touch: {sorted(touched)[:5]}"
        )
        for region in ("us", "eu"):  # the emulator's own state agrees
            now_deleted = set(self.emulator.admin("GET", region, "transcripts?deleted=true")["ids"])
            want = {t for r, t in expected if r == region} | (
                set(self.untouchable["eu"][:PURGE_ALREADY_DELETED]) if region == "eu" else set()
            )
            self.check(
                now_deleted == want, f"{region}: {len(now_deleted)} transcripts deleted, expected {len(want)}"
            )
        # Once each: the purge's two attempts never both deleted one transcript, nor did a chain.
        once = {(region, t) for region, t in expected if (self._task_of(region, t) not in self.collateral)}
        repeated = {key: n for key, n in deleted.items() if n > 1 and key in once}
        self.check(not repeated, f"transcripts deleted more than once: {repeated}")
        xcoms = self.cluster.query(
            "SELECT map_index, value FROM xcom "
            "WHERE dag_id = %s AND task_id = 'delete' AND key = 'return_value'",
            DELETE_DAG,
        )
        returned = {value["id"] for _, value in xcoms if value.get("text") == "Deleted by user."}
        self.check(
            returned == {t for ids in self.deletes.values() for t in ids},
            f"mapped deletes' XCom: {len(returned)} deleted transcripts returned, expected {MAPPED_DELETES}",
        )
        self.figures["deleted"] = len(deleted)

    def _task_of(self, region: str, transcript: str) -> tuple[str, str, int] | None:
        """The task instance that deleted a transcript of workloads 1 and 2 (None for the purge)."""
        if transcript in self.sensor_ids:
            return (SENSOR_DAG, SENSOR_DELETE_TASK, self.sensor_ids.index(transcript))
        for ids in self.deletes.values():
            if transcript in ids:
                return (DELETE_DAG, "delete", self._delete_index(region, transcript))
        return None

    def _delete_index(self, region: str, transcript: str) -> int:
        order = [t for r in ("us", "eu") for t in self.deletes[r]]
        return order.index(transcript)

    def _verify_purge(self, requests: list[dict[str, Any]]) -> None:
        """Both attempts' audits against what happened, and the retry's summary, exact to the transcript."""
        [(summary, retry_started)] = self.cluster.query(
            "SELECT x.value, ti.start_date FROM xcom x JOIN task_instance ti USING (dag_id, run_id, task_id) "
            "WHERE x.dag_id = %s AND x.task_id = 'purge' AND x.key = 'return_value'",
            PURGE_DAG,
        )
        deleted_at = {  # each purge transcript's (one) successful DELETE
            checks.transcript_id(r): datetime.fromisoformat(r["time"])
            for r in requests
            if r["region"] == "eu" and r["method"] == "DELETE" and r["status"] == 200
        }
        by_retry = {t for t in self.purge_ids if t in deleted_at and deleted_at[t] > retry_started}
        before_retry = {t for t in self.purge_ids if t in deleted_at and deleted_at[t] <= retry_started}
        claims = checks.audited_deletions(self.audit_uri)
        self.check(
            sorted(claims) == [1, 2], f"the audit credits deletions to tries {sorted(claims)}, not 1 and 2"
        )
        self.check(
            claims.get(1, set()) == before_retry,
            f"the killed attempt made {len(before_retry)} deletions, its audit (with the retry's recovery "
            f"of its intents) names {len(claims.get(1, ()))}: "
            f"claimed but not made {sorted(claims.get(1, set()) - before_retry)[:5]}, "
            f"made but not named {sorted(before_retry - claims.get(1, set()))[:5]}",
        )
        self.check(
            claims.get(2) == by_retry,
            f"the retry's audit claims {len(claims.get(2, ()))} deletions, it made {len(by_retry)}",
        )
        eu_total = PURGE_OLD + PURGE_ALREADY_DELETED + PURGE_IN_FLIGHT + PURGE_RECENT + MAPPED_DELETES // 2
        expect = {
            "scanned": eu_total,
            "matched": PURGE_OLD + PURGE_ALREADY_DELETED,
            "deleted": len(by_retry),
            "already_deleted": PURGE_ALREADY_DELETED + len(before_retry),
            "failed": 0,
            "not_found": 0,
            "scan_complete": True,
            "error": None,
        }
        wrong = {key: (summary.get(key), value) for key, value in expect.items() if summary.get(key) != value}
        self.check(not wrong, f"the retry's summary (got, expected): {wrong}")
        self.check(set(summary["deleted_ids"]) == by_retry, "the retry's summary lists other deletions")
        self.figures["purge"] = {
            "deleted_by_first_attempt": len(before_retry),
            "audited_by_first_attempt": len(claims.get(1, ())),
            "recovered_by_retry": summary.get("recovered"),
            "deleted_by_retry": len(by_retry),
            "already_deleted_seen_by_retry": summary["already_deleted"],
        }

    def _verify_sensors(self, requests: list[dict[str, Any]]) -> None:
        rows = self.cluster.query(
            "SELECT map_index, value FROM xcom WHERE dag_id = %s AND task_id = %s AND key = 'return_value'",
            SENSOR_DAG,
            SENSOR_TASK,
        )
        summaries = {index: value for index, value in rows}
        done = {v["transcript_id"] for v in summaries.values() if v.get("status") == "completed"}
        self.check(
            done == set(self.sensor_ids),
            f"{len(done)} sensors returned a completed transcript, expected {SENSORS}",
        )
        exported = {p.stem for p in self.export_dir.glob("*.json")}
        self.check(exported == set(self.sensor_ids), f"{len(exported)} exports written, expected {SENSORS}")
        kill = datetime.fromtimestamp(self.kill_times["triggerer"], timezone.utc)
        listings = [
            datetime.fromisoformat(r["time"]) >= kill
            for r in requests
            if r["region"] == "us"
            and r["path"] == "/v2/transcript"
            and "status=" in r["query"]
            and r["status"] == 200
        ]
        self.check(
            False in listings and True in listings,
            "the status board was not used before and after the failover",
        )
        self.check(
            "failover" in self.figures, "the surviving triggerer never took over the dead one's triggers"
        )
        self.figures["board_listings"] = len(listings)
        # Each sensor's trigger fired once in all (its logs from both triggerers together), and those
        # of the dead triggerer fired in the survivor.
        survivor = next(j for n, j in self.cluster.triggerer_jobs.items() if j != self.victim_job)
        logs = (
            self.cluster.home
            / "logs"
            / f"dag_id={SENSOR_DAG}"
            / "run_id=deployment"
            / f"task_id={SENSOR_TASK}"
        )
        for index in range(SENSORS):
            fired = {
                int(path.name.rsplit(".", 2)[1]): path.read_text(errors="replace").count(
                    '"Trigger fired event"'
                )
                for path in (logs / f"map_index={index}").glob("attempt=*.log.trigger.*.log")
            }
            self.check(
                sum(fired.values()) == 1, f"sensor {index}: trigger events fired by triggerer job {fired}"
            )
            if index in self.adopted:
                self.check(
                    fired.get(survivor) == 1, f"sensor {index} was not finished by the survivor: {fired}"
                )
        self.check(
            len(self.adopted) >= SENSORS // 2, f"the killed triggerer held only {len(self.adopted)} sensors"
        )

    def _verify_rate_limits(self, requests: list[dict[str, Any]]) -> None:
        limited = [r for r in requests if r["status"] == 429]
        self.check(bool(limited), "no 429 at all: the rate limit was not below the demand")
        problems = checks.unabsorbed_rate_limits(requests)
        self.check(not problems, f"{len(problems)} 429s not absorbed, e.g. {problems[:3]}")
        self.check(all(r["key_matched"] for r in requests), "a request came without the right key")
        self.figures["requests"] = len(requests)
        self.figures["rate_limited"] = len(limited)
        self.figures["longest_429_streak"] = checks.longest_rate_limit_streak(requests)

    def _verify_no_key_anywhere(self) -> None:
        sources = dict(self.secrets_seen)
        sources["pg_dump of the metadata database"] = self.postgres.dump()
        sources["Redis keys and values at the end"] = self.redis.dump()
        sources.update(checks.files_under(self.workdir, exclude=[self.emulator.folder, self.postgres.folder]))
        self.check(
            any("/logs/dag_id=" in name for name in sources)
            and any(name.endswith("triggerer-1.log") for name in sources),
            "the task and component logs were not found",
        )
        self.check(
            bool(sources.get("trigger rows (decrypted) while the sensors wait")), "no trigger rows sampled"
        )
        leaked = checks.leaks(self.api_key, sources)
        self.check(not leaked, f"the API key is in: {leaked}")
        self.figures["places_checked_for_the_key"] = len(sources)

    def _traffic_figures(self, requests: list[dict[str, Any]]) -> None:
        """Requests (and 429s) per workload, peak rate, purge speed: the figures docs/deployment.md quotes."""
        sensor_ids, purge_ids = set(self.sensor_ids), set(self.purge_ids)
        delete_ids = {t for ids in self.deletes.values() for t in ids}

        def workload(r: dict[str, Any]) -> str:
            tid = checks.transcript_id(r)
            if tid in purge_ids or (r["region"] == "eu" and tid is None):
                return "purge"
            if tid in sensor_ids or (r["region"] == "us" and tid is None):
                return "sensor_chains"
            return "mapped_deletes" if tid in delete_ids else "other"

        by_workload: dict[str, Counter[str]] = {}
        for r in requests:
            counts = by_workload.setdefault(workload(r), Counter())
            counts["requests"] += 1
            counts["429"] += r["status"] == 429
        self.figures["requests_by_workload"] = {name: dict(c) for name, c in sorted(by_workload.items())}
        seconds = Counter(r["time"][:19] for r in requests)  # per wall-clock second
        self.figures["peak_requests_per_s"] = max(seconds.values())
        kill = datetime.fromtimestamp(self.kill_times["worker"], timezone.utc)
        retry_deletes = sorted(
            datetime.fromisoformat(r["time"])
            for r in requests
            if r["method"] == "DELETE"
            and r["status"] == 200
            and checks.transcript_id(r) in purge_ids
            and datetime.fromisoformat(r["time"]) > kill + timedelta(seconds=5)
        )
        span = (retry_deletes[-1] - retry_deletes[0]).total_seconds() if len(retry_deletes) > 1 else 0
        self.figures["purge_retry_deletes_per_s"] = (
            round((len(retry_deletes) - 1) / span, 1) if span else None
        )
        sensor_gets = sum(
            1 for r in requests if r["method"] == "GET" and checks.transcript_id(r) in sensor_ids
        )
        self.figures["sensor_gets_per_transcript"] = round(sensor_gets / SENSORS, 1)

    # -- summary ---------------------------------------------------------------------------------

    def summary(self) -> str:
        """The one ``deployment:`` line."""
        f = self.figures
        untouchable = PURGE_ALREADY_DELETED + PURGE_IN_FLIGHT + PURGE_RECENT + OTHER_REGION_OLD
        victim = f["triggerer_killed"]
        return (
            f"deployment: {MAPPED_DELETES} mapped deletes (us+eu), {SENSORS} sensor->export->delete "
            f"chains, purge of {PURGE_OLD} old transcripts (concurrency 16, {untouchable} untouchable) "
            f"on {len(WORKERS)} Celery workers x {WORKER_CONCURRENCY} + {len(TRIGGERERS)} triggerers, "
            f"PostgreSQL + Redis; wall {f['wall_s']:.0f}s (startup {f['startup_s']:.0f}s, runs "
            f"{f['runs_s']:.0f}s); {f['rate_limited']} 429s absorbed of {f['requests']} requests at "
            f"{RATE_LIMIT[0] / RATE_LIMIT[1]:g}/s; triggerer failover {f['failover']:.1f}s ({victim} held "
            f"{f['triggers_held'][victim]} of {SENSORS}); purge worker killed after "
            f"{f['purge_deleted_before_kill']} deletions, the retry deleted {f['purge']['deleted_by_retry']}"
        )


def _raise_on_signal(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def _workdir(keep: bool) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="assemblyai-deployment-"))
    folder.chmod(0o711)  # the PostgreSQL server's user must reach its folder inside
    try:
        yield folder
    finally:
        if keep:
            print(f"kept {folder} (--keep)", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Run the deployment test; 0 if every check passed."""
    parser = argparse.ArgumentParser(prog="python -m tests.deployment", description=__doc__.split("\n\n")[0])
    parser.add_argument("--result", type=Path, help="write the run's figures to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the directory (logs, audit) for debugging")
    args = parser.parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_on_signal)
    started = time.monotonic()
    deployment: Deployment | None = None
    try:
        with _workdir(args.keep) as workdir, contextlib.ExitStack() as stack:
            deployment = Deployment(workdir, stack)
            try:
                deployment.start()
                deployment.run()
                deployment.verify()
            except BaseException:
                if hasattr(deployment, "cluster"):  # before the teardown removes the logs
                    print(deployment.cluster.logs_tail(2000), file=sys.stderr)
                raise
    except BaseException as error:
        traceback.print_exc()
        print(f"deployment: FAILED after {time.monotonic() - started:.0f}s: {error}", file=sys.stderr)
        return 1
    assert deployment is not None
    deployment.figures["wall_s"] = round(time.monotonic() - started, 1)  # teardown included
    line = deployment.summary()
    print(line, flush=True)
    if args.result:
        args.result.parent.mkdir(parents=True, exist_ok=True)
        args.result.write_text(json.dumps({"summary": line, **deployment.figures}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
