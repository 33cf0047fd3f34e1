"""
A real Airflow 3 in subprocesses: api-server, scheduler (LocalExecutor), dag-processor and triggerer.

Throwaway ``AIRFLOW_HOME`` on SQLite, intervals shortened through ``AIRFLOW__`` variables, free ports,
the test venv's ``bin`` first on ``PATH``. Every component runs in its own process group with its
own log file; :meth:`AirflowCluster.stop` kills each group as a whole (SIGTERM, then SIGKILL), and
then whatever the component had started (task processes run in process groups of their own).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import psutil

ADMIN_USER = "admin"
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


def process_tree(pid: int) -> list[psutil.Process]:
    """A process and all its descendants (empty if it is gone)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def kill_processes(processes: list[psutil.Process]) -> None:
    """SIGKILL every process still alive and reap it."""
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(processes, timeout=10)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AirflowCluster:
    """
    The four Airflow 3 components against one throwaway ``AIRFLOW_HOME``.

    :param home: an empty directory for ``AIRFLOW_HOME`` (``dags/`` inside it is the DAG folder).
    :param extra_env: more environment variables for every component (connections, ...).
    """

    #: The components :meth:`start` launches, in order (a name is the ``airflow`` sub-command).
    components: tuple[str, ...] = COMPONENTS

    def __init__(self, home: Path, extra_env: dict[str, str] | None = None) -> None:
        self.home = home
        self.dags = home / "dags"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.password = secrets.token_urlsafe(12)
        self._jwt_secret = secrets.token_hex(32)  # one per cluster: every component must share it
        self._secret_key = secrets.token_hex(32)
        self.extra_env = dict(extra_env or {})
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._token: str | None = None
        self.airflow = str(Path(sys.executable).parent / "airflow")

    def env(self) -> dict[str, str]:
        """The environment of every component: nothing from the test run's own Airflow settings."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))}
        env.update(
            {
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API_AUTH__JWT_SECRET": self._jwt_secret,
                "AIRFLOW__API__SECRET_KEY": self._secret_key,
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
                # Short intervals so a run takes seconds, not minutes.
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "1",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "2",
                "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": "2",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
            }
        )
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 150.0) -> AirflowCluster:
        """Migrate the database, start every component and wait until the api-server answers."""
        self.migrate(timeout)
        for name in self.components:
            self.launch(name)
        self.wait_for_api_server(timeout)
        return self

    def migrate(self, timeout: float = 150.0) -> None:
        """Write the admin password file and run ``airflow db migrate``."""
        self.dags.mkdir(parents=True, exist_ok=True)
        (self.home / "passwords.json").write_text(json.dumps({ADMIN_USER: self.password}))
        with (self.home / "migrate.log").open("wb") as log:
            subprocess.run(
                [self.airflow, "db", "migrate"],
                env=self.env(),
                cwd=self.home,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=True,
            )

    def command(self, name: str) -> list[str]:
        """The command line of a component."""
        command = [self.airflow, name]
        if name == "api-server":
            command += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        return command

    def launch(self, name: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """
        Start one component in its own process group, logging to :meth:`log_path`.

        :param name: the component (a key of :attr:`processes`).
        :param extra_env: environment variables for this component only.
        """
        with self.log_path(name).open("ab") as log:  # a restarted component keeps its earlier log
            self.processes[name] = subprocess.Popen(
                self.command(name),
                env={**self.env(), **(extra_env or {})},
                cwd=self.home,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self.processes[name]

    def wait_for_api_server(self, timeout: float = 150.0) -> None:
        """Wait until the api-server answers its health check."""
        self._wait(
            lambda: self._get("/api/v2/monitor/health", auth=False).status_code == 200, timeout, "api-server"
        )

    def kill(self, component: str) -> None:
        """SIGKILL one component's whole process group (no clean shutdown) and reap it.

        :param component: one of :data:`COMPONENTS`.
        """
        process = self.processes.pop(component)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def restart(self, component: str) -> None:
        """Start a killed component again, with the same environment (its log continues).

        :param component: one of :data:`COMPONENTS`.
        """
        self.launch(component)

    def log_path(self, component: str) -> Path:
        """The stdout/stderr log of one component."""
        return self.home / f"{component}.log"

    def log(self, component: str) -> str:
        """The whole log of one component so far."""
        path = self.log_path(component)
        return path.read_text(errors="replace") if path.exists() else ""

    def logs_tail(self, chars: int = 3000) -> str:
        """The end of every component's log, for failure messages."""
        return "\n".join(f"--- {name} ---\n{self.log(name)[-chars:]}" for name in self.components)

    def _check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.logs_tail()}")

    def _wait(self, condition: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(httpx.TransportError):
                if condition():
                    return
            time.sleep(0.5)
        raise TimeoutError(f"{what} not ready after {timeout}s:\n{self.logs_tail()}")

    # -- REST ---------------------------------------------------------------------------------------

    def _token_value(self) -> str:
        if self._token is None:
            response = httpx.post(
                f"{self.url}/auth/token", json={"username": ADMIN_USER, "password": self.password}, timeout=30
            )
            response.raise_for_status()
            self._token = str(response.json()["access_token"])
        return self._token

    def _get(self, path: str, *, auth: bool = True) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._token_value()}"} if auth else {}
        return httpx.get(f"{self.url}{path}", headers=headers, timeout=30)

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """
        Call ``/api/v2{path}`` as the admin and return the JSON body (raising on HTTP errors).

        :param method: the HTTP method.
        :param path: the path under ``/api/v2``.
        :param body: the JSON body, if any.
        """
        response = httpx.request(
            method,
            f"{self.url}/api/v2{path}",
            json=body,
            headers={"Authorization": f"Bearer {self._token_value()}"},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()

    def wait_for_dag(self, dag_id: str, timeout: float = 120.0) -> None:
        """Wait until the dag-processor has parsed ``dag_id`` (it is then known to the API)."""
        self._wait(lambda: self._get(f"/api/v2/dags/{dag_id}").status_code == 200, timeout, f"DAG {dag_id}")

    def check_alive(self) -> None:
        """Raise, with the logs, if a component died."""
        self._check_alive()

    # -- teardown -----------------------------------------------------------------------------------

    def stop(self) -> None:
        """
        Stop every component: SIGTERM to its process group, a grace period, then SIGKILL.

        Airflow runs each task in a process group of its own, so the processes a component started
        are collected first and killed too if they outlive it.
        """
        processes, self.processes = self.processes, {}
        descendants = [child for process in processes.values() for child in process_tree(process.pid)]
        for process in processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for process in processes.values():  # the leader, or stragglers of its group that outlived it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        kill_processes(descendants)

    def __enter__(self) -> AirflowCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
