"""State kept per asyncio event loop, and dropped with the loop: ``PerEventLoop``."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerEventLoop(weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T], Generic[T]):
    """
    One value per event loop, made by ``factory`` on the loop's first use and forgotten with the loop.

    Shared clients and caches must not outlive (or cross) the loop they were made on: an httpx
    client, a lock or a future belongs to one loop. The keys are weak, so a closed and collected
    loop takes its value with it; it is still a ``WeakKeyDictionary`` (``pop``, ``get``, ``[loop]``).

    :param factory: makes the value of a loop that has none yet.
    """

    def __init__(self, factory: Callable[[], T]) -> None:
        super().__init__()
        self.factory = factory

    def current(self) -> T:
        """The running loop's value, made on first use (call it from a coroutine)."""
        loop = asyncio.get_running_loop()
        value = self.get(loop)
        if value is None:
            value = self[loop] = self.factory()
        return value
