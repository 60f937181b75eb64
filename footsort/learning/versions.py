"""Switching the model in use by hand: `footsort models use` / `rollback` and the review page's Roll back button.

Each switch returns the ModelPromoted event that tells plugins; the caller emits it through its plugin host.
A promotion after a retrain is footsort.learning.retrain.finish.
"""

from __future__ import annotations

from footsort.plugins import events


def use(version: str) -> events.ModelPromoted:
    """Make `version` (or "default") the model in use; the event (its `previous` equals `version` when nothing changed)."""
    from footsort.model import registry

    previous = registry.current_version()
    registry.use(version)
    return events.ModelPromoted(registry.current_version(), registry.in_use_path(), previous)


def rollback() -> events.ModelPromoted:
    """Go back to the model in use before the current one; the event."""
    from footsort.model import registry

    previous = registry.current_version()
    now = registry.rollback()
    return events.ModelPromoted(now, registry.in_use_path(), previous)


def changed(event: events.ModelPromoted) -> bool:
    """True when the switch changed the model in use."""
    return event.version != event.previous
