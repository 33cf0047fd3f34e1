"""
Airflow 3 as production runs it: CeleryExecutor on Redis, PostgreSQL metadata database, two Celery
workers (concurrency 4 each) and two triggerers, beside the scheduler, dag-processor and api-server.

Intervals are shortened so faults are noticed in seconds: a triggerer whose heartbeat is 5 s old is
dead to the other one (``[triggerer] triggerer_health_check_threshold``), and a task whose heartbeat
is 20 s old is failed, then retried, by the scheduler (``[scheduler] task_instance_heartbeat_timeout``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from tests.deployment.services import Postgres, Redis, wait_until
from tests.e2e.airflow_runner import AirflowCluster

WORKERS = ("worker-1", "worker-2")
TRIGGERERS = ("triggerer-1", "triggerer-2")
WORKER_CONCURRENCY = 4
REPO = Path(__file__).resolve().parents[2]


class CeleryCluster(AirflowCluster):
    """
    The Airflow deployment, on the given PostgreSQL and Redis.

    :param home: an empty directory for ``AIRFLOW_HOME``.
    :param postgres: the metadata database's server.
    :param redis: the Celery broker.
    :param connections: Airflow connections by id (as JSON-able dicts), given to every component.
    """

    components = ("api-server", "scheduler", "dag-processor", *WORKERS, *TRIGGERERS)

    def __init__(
        self, home: Path, postgres: Postgres, redis: Redis, connections: dict[str, dict[str, Any]]
    ) -> None:
        super().__init__(
            home,
            extra_env={
                f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(c) for conn_id, c in connections.items()
            },
        )
        self.postgres = postgres
        self.redis = redis
        self.fernet_key = Fernet.generate_key().decode()
        #: The ``job`` row id of each triggerer.
        self.triggerer_jobs: dict[str, int] = {}
        self._db: Any = None

    def env(self) -> dict[str, str]:
        """The SQLite/LocalExecutor settings of the base cluster, turned into a Celery deployment."""
        env = super().env()
        env.update(
            {
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres.url,
                "AIRFLOW__CELERY__BROKER_URL": self.redis.url,
                "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.postgres.url,
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
                # The scheduler hands Celery little more than the workers' 8 slots: the queue in Redis
                # stays short, so priorities count and a retry does not wait behind everything else.
                "AIRFLOW__CORE__PARALLELISM": "12",
                "AIRFLOW__CORE__FERNET_KEY": self.fernet_key,
                "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "True",
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "5",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
                # A task a dead worker had taken from the queue but not started yet is queued again.
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "60",
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "5",
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.deployment.hostname.component_hostname",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            }
        )
        return env

    def command(self, name: str) -> list[str]:
        """Celery workers and triggerers get distinct names and serve no logs (no fixed ports)."""
        if name in WORKERS:
            return [
                self.airflow,
                "celery",
                "worker",
                f"--concurrency={WORKER_CONCURRENCY}",
                f"--celery-hostname={name}@%h",
                "--skip-serve-logs",
            ]
        if name in TRIGGERERS:
            return [self.airflow, "triggerer", "--skip-serve-logs"]
        return super().command(name)

    def hostname(self, name: str) -> str:
        """The host name a worker or triggerer reports (as if each ran on a host of its own)."""
        return f"{name}.deployment"

    def start(self, timeout: float = 240.0) -> CeleryCluster:
        """Migrate, start every component, and wait until the api-server, workers and triggerers are up."""
        self.migrate(timeout)
        return self.start_components(timeout)

    def start_components(self, timeout: float = 240.0) -> CeleryCluster:
        """Start every component (the database is migrated) and wait until they are up."""
        for name in self.components:
            self.launch_component(name)
        for name in WORKERS:
            wait_until(
                lambda name=name: f"{name}@" in self.log(name) and " ready." in self.log(name), timeout, name
            )
        for name in TRIGGERERS:
            self.triggerer_jobs[name] = wait_until(
                lambda name=name: self._triggerer_job(name), timeout, f"{name}'s job row", poll=0.5
            )
        self.wait_for_api_server(timeout)
        return self

    def launch_component(self, name: str) -> None:
        """Start (or restart) a component; a worker or triggerer reports a host name of its own."""
        own_host = name in WORKERS or name in TRIGGERERS
        self.launch(name, {"DEPLOYMENT_HOSTNAME": self.hostname(name)} if own_host else None)

    def _triggerer_job(self, name: str) -> int | None:
        self.check_alive()
        rows = self.query(
            "SELECT id FROM job WHERE job_type = 'TriggererJob' AND hostname = %s", self.hostname(name)
        )
        return rows[0][0] if rows else None

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Run one SQL query on the metadata database and return its rows."""
        if self._db is None or self._db.closed:
            self._db = self.postgres.connect()
        with self._db.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    def forget(self, name: str) -> None:
        """Stop watching a component that the test killed on purpose."""
        self.processes.pop(name, None)

    def stop(self) -> None:
        """Close the test's database connection, then stop every component."""
        if self._db is not None:
            self._db.close()
        super().stop()
