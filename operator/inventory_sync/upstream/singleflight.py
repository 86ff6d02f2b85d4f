"""One in-flight call shared by every concurrent caller: how token refreshes are deduplicated."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """Runs `call` once for any number of concurrent `run()` callers.

    The call is a task awaited through `asyncio.shield`: a burst of callers makes one
    request, a failure fails them all at once, and one caller being cancelled does not
    abort the call the others are waiting for.
    """

    def __init__(self, call: Callable[[], Awaitable[T]], *, name: str) -> None:
        self._call = call
        self._name = name
        self._task: asyncio.Task[T] | None = None

    async def run(self) -> T:
        if self._task is None:
            task = asyncio.ensure_future(self._call())
            task.set_name(self._name)
            task.add_done_callback(self._finished)
            self._task = task
        return await asyncio.shield(self._task)

    def _finished(self, task: asyncio.Task[T]) -> None:
        if self._task is task:
            self._task = None
        if not task.cancelled():
            # Every waiter saw the outcome through its shield; retrieving it here keeps
            # asyncio from logging "Task exception was never retrieved" when all left first.
            task.exception()
