"""Plugin discovery and event dispatch (see issue 5; the daemon only needs PluginHost.emit)."""

from __future__ import annotations

from footsort.events import Event


class PluginHost:
    """Delivers events to enabled plugins; a failing plugin is logged and never stops sorting."""

    def emit(self, event: Event) -> None:
        """Deliver one event to every subscriber (non-blocking for slow plugins)."""

    def close(self) -> None:
        """Flush pending events and stop background delivery."""
