"""The kopf layer hands watch events to the scheduler on the scheduler's own event loop."""

from __future__ import annotations

import inspect

from inventory_sync.kube import KubeConnection
from inventory_sync.operating.context import OperatorContext
from inventory_sync.operating.handlers import build_registry
from inventory_sync.settings import Settings


def test_watch_handlers_are_coroutines_so_kopf_never_calls_them_from_a_thread() -> None:
    # kopf runs a plain `def` handler in a worker thread; the scheduler's slots are then
    # changed while its loop iterates them ("dictionary changed size during iteration"
    # stopped scheduling for good with 200 resources in bench/schedule_lateness.py).
    context = OperatorContext(
        settings=Settings(database_url="postgresql://unused", metrics_port=0, health_port=0),
        connection=KubeConnection(server="https://api.invalid"),
        database_url="postgresql://unused",
    )
    registry = build_registry(context)
    handlers = [h for h in registry._watching.get_all_handlers() if h.id.startswith("watch-")]
    assert {h.id for h in handlers} == {"watch-syncschedules", "watch-fabrics"}
    assert all(inspect.iscoroutinefunction(h.fn) for h in handlers)
