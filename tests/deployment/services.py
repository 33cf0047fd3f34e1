"""
The services under the deployment, each a real process on a free loopback port: PostgreSQL (Debian's
server binaries, a cluster of its own), Redis, and the AssemblyAI emulator (its CLI, another process).

Each runs in its own session; :meth:`Service.stop` ends it and everything it started.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx

from tests.e2e.airflow_runner import free_port, kill_processes, process_tree

_S = TypeVar("_S", bound="Service")


def wait_until(condition: Callable[[], Any], timeout: float, what: str, poll: float = 0.2) -> Any:
    """Poll ``condition`` until it returns something truthy (returned); TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, httpx.TransportError):
            result = condition()
            if result:
                return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached after {timeout:.0f}s")
        time.sleep(poll)


class Service:
    """
    One server process in its own session, logging to ``<folder>/<name>.log``.

    :param folder: a directory of its own (created).
    :param name: the service's name, for messages and its log file.
    """

    def __init__(self, folder: Path, name: str) -> None:
        self.folder = folder
        self.name = name
        self.process: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def log_path(self) -> Path:
        """Where the process's stdout and stderr go."""
        return self.folder / f"{self.name}.log"

    def spawn(self, command: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """Start ``command`` in a new session with its output in :attr:`log_path`."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
            )
        return self.process

    def check_alive(self) -> None:
        """Raise, with the end of the log, if the process exited."""
        if self.process is not None and self.process.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{tail}")

    def stop(self, signum: int = signal.SIGTERM, grace: float = 10.0) -> None:
        """Send ``signum``, wait up to ``grace`` seconds, then SIGKILL the process and its descendants."""
        process, self.process = self.process, None
        if process is None:
            return
        tree = process_tree(process.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
        kill_processes(tree)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def postgres_bindir() -> Path:
    """The newest Debian PostgreSQL server binaries (``/usr/lib/postgresql/<version>/bin``)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name)
    )
    if not found:
        raise RuntimeError(
            "no PostgreSQL server found in /usr/lib/postgresql/*/bin: run `make deployment-deps`"
        )
    return Path(found[-1]).parent


class Postgres(Service):
    """
    A PostgreSQL cluster of its own (``initdb``) on 127.0.0.1, password auth, no Unix socket.

    Durability is traded for speed (``fsync=off``): the data is thrown away after the run. As root,
    the server runs as the ``postgres`` user (PostgreSQL refuses root).

    :param folder: an empty directory for the data and the log.
    """

    user = "airflow"
    database = "airflow"

    def __init__(self, folder: Path) -> None:
        super().__init__(folder, "postgres")
        self.bindir = postgres_bindir()
        self.port = free_port()
        self.password = secrets.token_urlsafe(16)
        self.data = folder / "data"

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the Airflow database."""
        return f"postgresql+psycopg2://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    def _as_owner(self) -> list[str]:
        if os.geteuid() != 0:
            return []
        return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]

    def start(self, timeout: float = 60.0) -> Postgres:
        """Create the cluster, start the server and create the Airflow database."""
        pwfile = self.folder / "pwfile"
        pwfile.write_text(self.password)
        if os.geteuid() == 0:  # the server's user owns its files (the folders above must be traversable)
            owner = pwd.getpwnam("postgres")
            for path in (self.folder, pwfile):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        with self.log_path.open("ab") as log:
            subprocess.run(
                [
                    *self._as_owner(),
                    str(self.bindir / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    self.user,
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--no-sync",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
                timeout=timeout,
            )
        pwfile.unlink()
        self.spawn(
            [
                *self._as_owner(),
                str(self.bindir / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "unix_socket_directories=",
                "-c",
                "max_connections=300",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]
        )
        wait_until(self._create_database, timeout, "PostgreSQL accepting connections")
        return self

    def connect(self, database: str | None = None) -> Any:
        """A psycopg2 connection (autocommit) to the Airflow database (or ``database``)."""
        import psycopg2

        self.check_alive()
        conn = psycopg2.connect(
            host="127.0.0.1",
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=database or self.database,
            connect_timeout=5,
        )
        conn.autocommit = True
        return conn

    def _create_database(self) -> bool:
        import psycopg2

        try:
            conn = self.connect("postgres")
        except psycopg2.OperationalError:
            return False
        with contextlib.closing(conn), conn.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {self.database}")
        return True

    def dump(self) -> str:
        """``pg_dump`` of the Airflow database (schema and every row), as SQL text."""
        result = subprocess.run(
            [
                str(self.bindir / "pg_dump"),
                "--host=127.0.0.1",
                f"--port={self.port}",
                f"--username={self.user}",
                self.database,
            ],
            env={**os.environ, "PGPASSWORD": self.password},
            capture_output=True,
            check=True,
            timeout=120,
        )
        return result.stdout.decode("utf-8", errors="replace")

    def stop(self, signum: int = signal.SIGINT, grace: float = 10.0) -> None:
        """Fast shutdown (SIGINT), then SIGKILL."""
        super().stop(signum, grace)


class Redis(Service):
    """
    A Redis server on 127.0.0.1 with a password, nothing persisted.

    :param folder: an empty directory for its working files and log.
    """

    def __init__(self, folder: Path) -> None:
        super().__init__(folder, "redis")
        self.port = free_port()
        self.password = secrets.token_urlsafe(16)

    @property
    def url(self) -> str:
        """The Celery broker URL."""
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 30.0) -> Redis:
        """Start the server and wait until it answers PING."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found: run `make deployment-deps`")
        config = self.folder / "redis.conf"
        config.write_text(
            "\n".join(
                [
                    "bind 127.0.0.1",
                    f"port {self.port}",
                    f"requirepass {self.password}",
                    f"dir {self.folder}",
                    'save ""',
                    "appendonly no",
                    "daemonize no",
                ]
            )
            + "\n"
        )
        self.spawn([binary, str(config)])
        wait_until(lambda: self.client().ping(), timeout, "Redis answering PING")
        return self

    def client(self) -> Any:
        """A redis-py client."""
        import redis

        self.check_alive()
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, socket_timeout=10)

    def dump(self) -> str:
        """Every key with its value (lists, hashes, sets, sorted sets, strings), as text."""
        client = self.client()
        readers: dict[bytes, Callable[[bytes], Any]] = {
            b"string": client.get,
            b"list": lambda key: client.lrange(key, 0, -1),
            b"hash": client.hgetall,
            b"set": client.smembers,
            b"zset": lambda key: client.zrange(key, 0, -1),
        }
        lines = []
        for key in client.scan_iter(count=1000):
            kind = client.type(key)
            value = readers[kind](key) if kind in readers else f"<{kind!r}>"
            lines.append(f"{key!r} {kind!r} {value!r}")
        return "\n".join(lines)


class EmulatorProcess(Service):
    """
    The emulator's own CLI (``python -m airflow_provider_assemblyai.testing serve``) in another process.

    Test data goes in, and the request log comes out, through its ``/_emulator/`` admin endpoints.
    Its own output holds the key (it prints the connection line): it is not one of the logs checked.

    :param folder: an empty directory for its log.
    :param api_key: the one key it accepts.
    :param rate_limit: the account limit, ``(requests, per_seconds)``.
    """

    def __init__(self, folder: Path, api_key: str, rate_limit: tuple[int, float]) -> None:
        super().__init__(folder, "emulator")
        self.api_key = api_key
        self.rate_limit = rate_limit
        self.urls: dict[str, str] = {}
        self._cursor = 0
        self._requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def start(self, timeout: float = 60.0) -> EmulatorProcess:
        """Start it on free ports and read the regions' URLs from its output."""
        requests, seconds = self.rate_limit
        command = [
            sys.executable,
            "-m",
            "airflow_provider_assemblyai.testing",
            "serve",
            "--port=0",
            f"--api-key={self.api_key}",
            f"--rate-limit={requests}/{seconds:g}",
        ]
        self.spawn(command, env={**os.environ, "PYTHONUNBUFFERED": "1"})

        def ready() -> bool:
            self.check_alive()
            out = self.log_path.read_text(errors="replace")
            self.urls = dict(re.findall(r"^(US|EU): (http://\S+)", out, re.MULTILINE))
            self.urls = {region.lower(): url for region, url in self.urls.items()}
            return "READY" in out

        wait_until(ready, timeout, "the emulator")
        return self

    def connection(self, region: str, **extra: Any) -> dict[str, Any]:
        """An Airflow connection (as JSON-able dict) to one region of this emulator."""
        return {
            "conn_type": "assemblyai",
            "password": self.api_key,
            "extra": {"region": region, "base_url": self.urls[region], **extra},
        }

    def admin(self, method: str, region: str, path: str, body: Any = None) -> Any:
        """Call ``/_emulator/<path>`` on a region's port and return the JSON answer."""
        response = httpx.request(method, f"{self.urls[region]}/_emulator/{path}", json=body, timeout=60)
        response.raise_for_status()
        return response.json()

    def create(self, region: str, specs: list[dict[str, Any]]) -> list[str]:
        """Create transcripts (see ``testing/admin.py``) and return their ids in order."""
        return list(self.admin("POST", region, "transcripts", specs)["ids"])

    def requests(self) -> list[dict[str, Any]]:
        """The request log so far (both regions, oldest first), fetching only what is new."""
        with self._lock:
            page = self.admin("GET", "us", f"requests?since={self._cursor}")
            self._requests.extend(page["requests"])
            self._cursor = page["next"]
            return list(self._requests)
