"""
The HTTP clients' shared parts: the process's one TLS context, and the async connection pool every
hook (and trigger) on an event loop shares, split into small httpx clients (shards).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from functools import cache

import httpx

from airflow_provider_assemblyai import __version__
from airflow_provider_assemblyai._loop_state import PerEventLoop

USER_AGENT = f"airflow-provider-assemblyai/{__version__}"


@cache
def ssl_context() -> ssl.SSLContext:
    """The process's one TLS context, shared by every client: loading the CA bundle costs 10-50 ms."""
    return httpx.create_ssl_context()


#: Connections in the shared async pool, and requests let into httpx at once (see ``slots``).
ASYNC_POOL_SIZE = 20
#: Connections per httpx client of the shared pool. httpcore re-examines every connection of its pool
#: (quadratic work, a TLS attribute lookup each) whenever a request enters or leaves it: with 20
#: connections in one client that doubled the CPU of a poll, so the pool is split into small clients.
POOL_SHARD_SIZE = 4


@dataclass
class SharedAsyncClient:
    """
    The async connection pool shared per event loop and base URL by every hook (and trigger) on it.

    ``shards`` are httpx clients of at most :data:`POOL_SHARD_SIZE` connections each; a request goes
    to the one with the most free connections, so serial requests reuse one keep-alive connection.
    """

    shards: list[httpx.AsyncClient]
    capacity: list[int]
    busy: list[int]
    #: httpcore re-scans every queued request on each pool change (quadratic: 1,000 triggers polling
    #: at once starve the event loop), so requests beyond the pool size queue here, in O(1).
    slots: asyncio.Semaphore
    resume_at: float = 0.0

    @classmethod
    def open(cls, size: int, timeout: float, ssl_context: ssl.SSLContext) -> SharedAsyncClient:
        """
        Open a pool of ``size`` connections in total.

        :param size: connections (and requests in flight) in total.
        :param timeout: per-request timeout in seconds.
        :param ssl_context: the TLS context every shard verifies with.
        """
        full, rest = divmod(size, POOL_SHARD_SIZE)
        capacity = [POOL_SHARD_SIZE] * full + ([rest] if rest else [])
        shards = [
            httpx.AsyncClient(
                timeout=timeout,
                follow_redirects=False,
                headers={"User-Agent": USER_AGENT},
                verify=ssl_context,
                limits=httpx.Limits(max_connections=n, max_keepalive_connections=n),
            )
            for n in capacity
        ]
        return cls(shards, capacity, [0] * len(shards), asyncio.Semaphore(size))

    @property
    def client(self) -> httpx.AsyncClient:
        """The client requests are built with (every shard has the same settings)."""
        return self.shards[0]

    async def send(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` (body read) on the shard with the most free connections."""
        async with self.slots:
            index = max(range(len(self.shards)), key=lambda i: self.capacity[i] - self.busy[i])
            self.busy[index] += 1
            try:
                return await self.shards[index].send(request)
            finally:
                self.busy[index] -= 1

    async def aclose(self) -> None:
        """Close every shard's connections."""
        for shard in self.shards:
            await shard.aclose()

    async def wait_turn(self) -> None:
        """Sleep while a 429's Retry-After holds the whole pool back."""
        while (delay := self.resume_at - time.monotonic()) > 0:  # noqa: ASYNC110 (resume_at may move)
            await asyncio.sleep(delay)

    def hold_back(self, seconds: float) -> None:
        """Make every request on this client wait ``seconds`` from now."""
        self.resume_at = max(self.resume_at, time.monotonic() + seconds)


#: The shared pools of each event loop, by base URL, timeout and size.
shared_async_clients: PerEventLoop[dict[tuple[str, float, int], SharedAsyncClient]] = PerEventLoop(dict)


async def shared_async_client(base_url: str, timeout: float, size: int) -> SharedAsyncClient:
    """
    The running loop's pool for a base URL, opened on first use.

    :param base_url: the URL its requests go to.
    :param timeout: per-request timeout in seconds.
    :param size: connections (and requests in flight) in total.
    """
    clients = shared_async_clients.current()
    key = (base_url, timeout, size)
    if key not in clients:
        # Loading the CA bundle blocks for tens of ms: do it off the loop (once per process).
        context = await asyncio.to_thread(ssl_context)
        clients.setdefault(key, SharedAsyncClient.open(size, timeout, context))
    return clients[key]


async def aclose_shared_async_clients() -> None:
    """Close the pools shared on the running event loop (call before the loop ends)."""
    for shared in shared_async_clients.pop(asyncio.get_running_loop(), {}).values():
        await shared.aclose()
