"""`AssemblyAIEmulator`: a local, in-process fake of AssemblyAI's transcript API (US + EU regions)."""

from __future__ import annotations

import errno
import json
import socket
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any
from urllib.parse import quote

from airflow_provider_assemblyai.testing.app import Sleeper, build_app
from airflow_provider_assemblyai.testing.clock import Clock, ManualClock
from airflow_provider_assemblyai.testing.config import EmulatorConfig
from airflow_provider_assemblyai.testing.faults import Fault, FaultKind
from airflow_provider_assemblyai.testing.server import ServerThread, bind_socket, is_loopback
from airflow_provider_assemblyai.testing.state import REGIONS, EmulatorState, RequestRecord

__all__ = ["AssemblyAIEmulator"]

_UNSPECIFIED = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


class AssemblyAIEmulator:
    """Serve the AssemblyAI transcript API for region ``us`` and ``eu`` on loopback ports.

    ``link_base_url="https://api.assemblyai.com"`` writes the list's absolute links on that host
    instead of the emulator's, as the real API does behind a gateway (see docs/emulator.md).
    Behaviour knobs are :class:`EmulatorConfig` fields, given as ``config=`` or by name.

    >>> with AssemblyAIEmulator(api_keys=("test-key",)) as emu:
    ...     tid = emu.create_transcript("us", status="completed")
    ...     url = emu.base_url("us")  # http://127.0.0.1:<port>
    """

    def __init__(
        self,
        *,
        config: EmulatorConfig | None = None,
        api_keys: Sequence[str] = ("test-key",),
        host: str = "127.0.0.1",
        port: int = 0,
        eu_port: int = 0,
        clock: Clock | None = None,
        allow_non_loopback: bool = False,
        log_level: str = "warning",
        access_log: bool = False,
        **settings: Any,
    ) -> None:
        """Configure the emulator (nothing is bound before :meth:`start`).

        :param config: the behaviour knobs (default: ``EmulatorConfig()``).
        :param api_keys: the accepted keys (the bare ``Authorization`` header value).
        :param host: the loopback address to bind.
        :param port: the US region's port (``0`` = any free port).
        :param eu_port: the EU region's port (``0`` = any free port).
        :param clock: what transcript lifecycles and the rate limit follow (default: real time).
        :param allow_non_loopback: allow a ``host`` that is not a loopback address.
        :param log_level: uvicorn's log level.
        :param access_log: whether uvicorn logs each request.
        :param settings: :class:`EmulatorConfig` fields by name (``queued_seconds=0``, ...),
            overriding those of ``config``.
        """
        if isinstance(api_keys, str):
            api_keys = (api_keys,)
        if not api_keys:
            raise ValueError("at least one API key is required")
        if not is_loopback(host) and not allow_non_loopback:
            raise ValueError(f"refusing to bind non-loopback host {host!r} (pass allow_non_loopback=True)")
        self.api_keys: tuple[str, ...] = tuple(api_keys)
        self.host = host
        self._ports: dict[str, int] = {"us": port, "eu": eu_port}
        config = replace(config, **settings) if config is not None else EmulatorConfig(**settings)
        self.state = EmulatorState(api_keys=self.api_keys, config=config, clock=clock, regions=REGIONS)
        self._log_level = log_level
        self._access_log = access_log
        self._server: ServerThread | None = None
        self._base_urls: dict[str, str] = {}

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> AssemblyAIEmulator:
        """Bind the regional ports and start serving (returns self)."""
        if self._server is not None:
            raise RuntimeError("emulator already started")
        sockets = {}
        try:
            for region in REGIONS:
                sockets[region] = _bind(self.host, self._ports[region], region)
        except OSError:
            for sock in sockets.values():
                sock.close()
            raise
        sleeper = Sleeper()
        url_host = _UNSPECIFIED.get(self.host, self.host)
        if ":" in url_host:
            url_host = f"[{url_host.strip('[]')}]"
        self._base_urls = {r: f"http://{url_host}:{s.getsockname()[1]}" for r, s in sockets.items()}
        apps = {r: build_app(self.state, r, self._base_urls[r], sleeper) for r in REGIONS}
        server = ServerThread(apps, sockets, sleeper, log_level=self._log_level, access_log=self._access_log)
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        """Stop both servers and free their ports (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> AssemblyAIEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the servers are up."""
        return self._server is not None and self._server.running

    # ----------------------------------------------------------------- addresses / connections
    @property
    def regions(self) -> tuple[str, ...]:
        """The served regions: ``("us", "eu")``."""
        return REGIONS

    def base_url(self, region: str = "us") -> str:
        """``http://127.0.0.1:<port>`` of a region (after start)."""
        if not self._base_urls:
            raise RuntimeError("emulator not started")
        try:
            return self._base_urls[region]
        except KeyError:
            raise KeyError(f"unknown region {region!r}; expected one of {REGIONS}") from None

    def port(self, region: str = "us") -> int:
        """The TCP port a region listens on."""
        return int(self.base_url(region).rsplit(":", 1)[1])

    def connection_json(self, region: str = "us", api_key: str | None = None) -> str:
        """A JSON Airflow connection for ``AIRFLOW_CONN_ASSEMBLYAI_DEFAULT`` pointing at this emulator."""
        return json.dumps(
            {
                "conn_type": "assemblyai",
                "password": api_key if api_key is not None else self.api_keys[0],
                "extra": {"region": region, "base_url": self.base_url(region)},
            }
        )

    def connection_uri(self, region: str = "us", api_key: str | None = None) -> str:
        """The same connection in Airflow URI form."""
        key = api_key if api_key is not None else self.api_keys[0]
        base = quote(self.base_url(region), safe="")
        return f"assemblyai://:{quote(key, safe='')}@/?region={quote(region, safe='')}&base_url={base}"

    def connection_env(
        self, region: str = "us", api_key: str | None = None, conn_id: str = "assemblyai_default"
    ) -> dict[str, str]:
        """``{"AIRFLOW_CONN_<CONN_ID>": <json>}``, e.g. for ``monkeypatch.setenv`` or a subprocess env."""
        return {f"AIRFLOW_CONN_{conn_id.upper()}": self.connection_json(region, api_key)}

    # ----------------------------------------------------------------- clock
    @property
    def clock(self) -> Clock:
        """The clock driving transcript lifecycles."""
        return self.state.clock

    def advance(self, seconds: float | timedelta) -> datetime:
        """Advance a :class:`ManualClock` (raises TypeError for the real clock)."""
        clock = self.state.clock
        if not isinstance(clock, ManualClock):
            raise TypeError("advance() needs AssemblyAIEmulator(clock=ManualClock())")
        return clock.advance(seconds)

    # ----------------------------------------------------------------- data
    def create_transcript(
        self,
        region: str = "us",
        *,
        status: str = "completed",
        created: datetime | None = None,
        audio_url: str | None = None,
        audio_duration: int | None = None,
        completes_in: float | None = None,
        final_status: str = "completed",
        error: str | None = None,
        deleted: bool = False,
        options: Mapping[str, Any] | None = None,
    ) -> str:
        """Insert a transcript directly in a given state; return its id."""
        return self.state.create_transcript(
            region,
            status=status,
            created=created,
            audio_url=audio_url,
            audio_duration=audio_duration,
            completes_in=completes_in,
            final_status=final_status,
            error=error,
            deleted=deleted,
            options=options,
        )

    def seed(
        self,
        n: int,
        region: str = "us",
        *,
        statuses: Mapping[str, float] | Sequence[str] | None = None,
        span: timedelta = timedelta(days=60),
        now: datetime | None = None,
        random_seed: int | None = None,
    ) -> list[str]:
        """Insert ``n`` transcripts spread over ``span`` back from ``now``; return ids newest first."""
        return self.state.seed(n, region, statuses=statuses, span=span, now=now, random_seed=random_seed)

    def get(self, region: str, transcript_id: str) -> dict[str, Any]:
        """The transcript as ``GET`` returns it now (KeyError if unknown in that region)."""
        return self.state.get(region, transcript_id)

    def is_deleted(self, region: str, transcript_id: str) -> bool:
        """Whether the transcript has been deleted."""
        return self.state.is_deleted(region, transcript_id)

    def ids(self, region: str = "us", status: str | None = None, deleted: bool | None = None) -> list[str]:
        """Ids newest first, optionally filtered by current status and deletion."""
        return self.state.ids(region, status=status, deleted=deleted)

    # ----------------------------------------------------------------- knobs
    def configure(self, **changes: Any) -> None:
        """Change settings at runtime (queued_seconds, error_rate, latency_ms, rate_limit, ...)."""
        self.state.configure(**changes)

    def set_latency(self, ms: float, jitter_ms: float = 0.0) -> None:
        """Delay every request by ``ms`` ± ``jitter_ms`` milliseconds."""
        self.state.configure(latency_ms=ms, latency_jitter_ms=jitter_ms)

    def set_rate_limit(self, requests: int | None, per_seconds: float = 300.0) -> None:
        """Account-wide token bucket shared by both regions (``None`` turns it off)."""
        self.state.set_rate_limit(requests, per_seconds)

    # ----------------------------------------------------------------- faults
    def add_fault(self, fault: Fault) -> Fault:
        """Queue a fault rule; rules are tried in order, the first live match fires."""
        return self.state.faults.add(fault)

    def fail_next(
        self,
        kind: FaultKind,
        times: int = 1,
        *,
        method: str | None = None,
        path: str | None = None,
        region: str | None = None,
        status: int | None = None,
        delay: float = 5.0,
        retry_after: int = 1,
    ) -> Fault:
        """Hit the next ``times`` matching requests with ``kind``."""
        return self.add_fault(
            Fault(kind, method, path, region, times, 1.0, status, delay=delay, retry_after=retry_after)
        )

    def fail_randomly(
        self,
        kind: FaultKind,
        probability: float,
        *,
        method: str | None = None,
        path: str | None = None,
        region: str | None = None,
        status: int | None = None,
        delay: float = 5.0,
        retry_after: int = 1,
    ) -> Fault:
        """Hit each matching request with ``kind`` with ``probability`` (seeded, until cleared)."""
        return self.add_fault(
            Fault(kind, method, path, region, None, probability, status, delay=delay, retry_after=retry_after)
        )

    def clear_faults(self) -> None:
        """Remove all fault rules."""
        self.state.faults.clear()

    @property
    def faults(self) -> list[Fault]:
        """Snapshot of the live fault rules."""
        return self.state.faults.rules()

    # ----------------------------------------------------------------- request log
    @property
    def requests(self) -> list[RequestRecord]:
        """Every request served so far (oldest first); never contains the API key."""
        return self.state.requests()

    def requests_for(
        self,
        method: str | None = None,
        region: str | None = None,
        path: str | None = None,
        status: int | None = None,
        fault: str | None = None,
    ) -> list[RequestRecord]:
        """The log filtered by method, region, path prefix, status and fault kind."""
        return [
            r
            for r in self.state.requests()
            if (method is None or r.method == method.upper())
            and (region is None or r.region == region)
            and (path is None or r.path.startswith(path))
            and (status is None or r.status == status)
            and (fault is None or r.fault == fault)
        ]

    @property
    def counters(self) -> dict[str, int]:
        """Counters: requests, status_<code>, unauthorized, rate_limited, faults, created, deleted."""
        return self.state.counters()

    @property
    def rate_limited_count(self) -> int:
        """How many requests the rate limiter refused with 429."""
        return self.state.counters().get("rate_limited", 0)

    def reset(self) -> None:
        """Clear transcripts, log, counters and faults; restore the constructor settings."""
        self.state.reset()


def _bind(host: str, port: int, region: str) -> socket.socket:
    """Bind a region's socket; an OSError says which region, host and port, in one line."""
    try:
        return bind_socket(host, port)
    except OSError as error:
        what = f"{region.upper()} port {port} on {host}"
        problem = (
            "is already in use" if error.errno == errno.EADDRINUSE else f"cannot be bound: {error.strerror}"
        )
        raise OSError(error.errno, f"{what} {problem}") from error
