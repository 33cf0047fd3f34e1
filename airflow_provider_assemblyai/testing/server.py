"""Run several uvicorn servers (one per region) on pre-bound sockets in one background thread."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

import uvicorn
from starlette.types import ASGIApp

if TYPE_CHECKING:  # app.py imports is_loopback from here
    from airflow_provider_assemblyai.testing.app import Sleeper

__all__ = ["ServerThread", "bind_socket", "is_loopback"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind a TCP socket (port 0 = any free port); uvicorn starts listening on it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


class ServerThread:
    """Serves ``apps[name]`` on ``sockets[name]``; one daemon thread, one event loop."""

    def __init__(
        self,
        apps: Mapping[str, ASGIApp],
        sockets: Mapping[str, socket.socket],
        sleeper: Sleeper,
        *,
        log_level: str = "warning",
        access_log: bool = False,
    ) -> None:
        self._apps = dict(apps)
        self._sockets = dict(sockets)
        self._sleeper = sleeper
        self._log_level = log_level
        self._access_log = access_log
        self._servers: list[uvicorn.Server] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout: float = 15.0) -> None:
        """Start the thread and wait until every server accepts connections."""
        self._thread = threading.Thread(target=self._run, name="assemblyai-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise RuntimeError("AssemblyAI emulator did not start in time")
        if self._error is not None:
            self.stop()
            raise RuntimeError("AssemblyAI emulator failed to start") from self._error

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # surfaced by start()
            self._error = exc
        finally:
            self._ready.set()
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _main(self) -> None:
        tasks: list[asyncio.Task[None]] = []
        for name, app in self._apps.items():
            config = uvicorn.Config(
                app,
                log_config=None,
                log_level=self._log_level,
                access_log=self._access_log,
                lifespan="off",
                timeout_graceful_shutdown=2,
                timeout_keep_alive=5,
            )
            server = uvicorn.Server(config)
            self._servers.append(server)
            tasks.append(asyncio.create_task(server.serve(sockets=[self._sockets[name]])))
        while not all(s.started for s in self._servers):
            if any(t.done() for t in tasks):
                break
            await asyncio.sleep(0.005)
        if all(s.started for s in self._servers):
            self._ready.set()
        else:
            for s in self._servers:
                s.should_exit = True
        results = await asyncio.gather(*tasks, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]
        if not self._ready.is_set():
            raise RuntimeError("a server exited during startup (port in use?)")

    def _request_stop(self) -> None:
        self._sleeper.stop()
        for server in self._servers:
            server.should_exit = True

    def stop(self, timeout: float = 15.0) -> None:
        """Ask the servers to exit, join the thread and close the sockets."""
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._request_stop)
            thread.join(timeout)
            if thread.is_alive():
                for server in self._servers:
                    server.force_exit = True
                thread.join(timeout)
        for sock in self._sockets.values():
            with contextlib.suppress(OSError):
                sock.close()
        self._thread = None

    @property
    def running(self) -> bool:
        """Whether the server thread is alive."""
        return self._thread is not None and self._thread.is_alive()
