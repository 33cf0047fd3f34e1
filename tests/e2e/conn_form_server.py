"""A real Airflow 3 api-server in a subprocess, for the connection-form browser and REST tests.

Throwaway ``AIRFLOW_HOME`` (SQLite, ``airflow db migrate``), the default SimpleAuthManager with one
admin whose password is written to the passwords file up front, ``[core] test_connection = Enabled``.
The server runs in its own process group, which :meth:`AirflowApiServer.stop` kills as a whole.
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

ADMIN_USER = "admin"
STARTUP_TIMEOUT_S = 90.0
MIGRATE_TIMEOUT_S = 120.0


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AirflowApiServer:
    """
    ``airflow api-server`` on 127.0.0.1 against its own ``AIRFLOW_HOME``.

    :param home: an empty directory to use as ``AIRFLOW_HOME``.
    """

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.password = secrets.token_urlsafe(12)
        self.log_path = home / "api-server.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._token: str | None = None

    def _env(self) -> dict[str, str]:
        # Nothing from the test run's own Airflow configuration (AIRFLOW_HOME, unit-test mode,
        # AIRFLOW_CONN_* set by other tests) leaks into the server.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))}
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.home / "dags"),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
                "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
            }
        )
        return env

    def start(self) -> AirflowApiServer:
        """Migrate the database, start the server and wait until it answers (returns self)."""
        airflow = str(Path(sys.executable).parent / "airflow")
        env = self._env()
        (self.home / "dags").mkdir(parents=True, exist_ok=True)
        # Known password up front: the auth manager only generates passwords for users not in the file.
        (self.home / "passwords.json").write_text(json.dumps({ADMIN_USER: self.password}))
        with (self.home / "migrate.log").open("wb") as log:
            subprocess.run(
                [airflow, "db", "migrate"],
                env=env,
                cwd=self.home,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=MIGRATE_TIMEOUT_S,
                check=True,
            )
        command = [airflow, "api-server", "--apps", "core", "--workers", "1"]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                command,
                env=env,
                cwd=self.home,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"api-server exited with {self._process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/api/v2/monitor/health", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"api-server not healthy after {STARTUP_TIMEOUT_S}s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's log, for failure messages."""
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self) -> None:
        """Terminate the server's whole process group (SIGTERM, then SIGKILL)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        for sig, grace in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError):  # stragglers of the group that outlived the leader
            os.killpg(process.pid, signal.SIGKILL)

    def __enter__(self) -> AirflowApiServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- REST -------------------------------------------------------------------------------------

    def token(self) -> str:
        """A JWT from ``POST /auth/token`` for the admin user."""
        if self._token is None:
            response = httpx.post(
                f"{self.url}/auth/token",
                json={"username": ADMIN_USER, "password": self.password},
                timeout=30,
            )
            response.raise_for_status()
            self._token = str(response.json()["access_token"])
        return self._token

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        """
        Call the REST API (``/api/v2/...``) as the admin user.

        :param method: the HTTP method.
        :param path: the path under ``/api/v2``.
        :param body: the JSON body, if any.
        """
        return httpx.request(
            method,
            f"{self.url}/api/v2{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.token()}"},
            timeout=60,
        )
