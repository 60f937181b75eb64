"""What footsort tells plugins: small frozen dataclasses, one per event."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from footsort.model.prediction import Prediction


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Event:
    """Base of every event; `name` is what plugins subscribe to."""

    name = "event"


@dataclass(frozen=True)
class DaemonStarted(Event):
    """The watch daemon started on these inboxes."""

    inboxes: tuple[Path, ...] = ()
    model_version: str = ""
    at: datetime = field(default_factory=_now)
    name = "daemon_started"


@dataclass(frozen=True)
class DaemonStopped(Event):
    """The watch daemon stopped."""

    inboxes: tuple[Path, ...] = ()
    at: datetime = field(default_factory=_now)
    name = "daemon_stopped"


@dataclass(frozen=True)
class FileSorted(Event):
    """A file was moved into a class folder."""

    source: Path = Path()
    destination: Path = Path()
    label: str = ""
    confidence: float = 0.0
    probabilities: Mapping[str, float] = field(default_factory=dict)
    model_version: str = ""
    at: datetime = field(default_factory=_now)
    name = "file_sorted"

    @classmethod
    def of(cls, source: Path, destination: Path, prediction: Prediction) -> "FileSorted":
        """The event for a photo moved into the class folder `prediction` chose."""
        p = prediction
        return cls(source, destination, p.label, p.confidence, dict(p.probabilities), p.model_version)


@dataclass(frozen=True)
class FileReviewed(Event):
    """A file went to the review queue because the model was not confident enough."""

    source: Path = Path()
    destination: Path = Path()
    label: str = ""  # the model's best guess
    confidence: float = 0.0
    probabilities: Mapping[str, float] = field(default_factory=dict)
    model_version: str = ""
    reason: str = ""
    at: datetime = field(default_factory=_now)
    name = "file_reviewed"

    @classmethod
    def of(cls, source: Path, destination: Path, prediction: Prediction | None, reason: str) -> "FileReviewed":
        """The event for a photo sent to review/ (`prediction`: the model's guess; None when it was not asked)."""
        if prediction is None:
            return cls(source, destination, reason=reason)
        p = prediction
        return cls(source, destination, p.label, p.confidence, dict(p.probabilities), p.model_version, reason)


@dataclass(frozen=True)
class FileFailed(Event):
    """A file could not be processed (unreadable image, ...); it went to failed/ or stayed put."""

    source: Path = Path()
    destination: Path | None = None
    reason: str = ""
    at: datetime = field(default_factory=_now)
    name = "file_failed"


@dataclass(frozen=True)
class CorrectionSeen(Event):
    """The person moved a sorted file to another class folder (or out of review/)."""

    path: Path = Path()
    old_label: str = ""
    new_label: str = ""
    at: datetime = field(default_factory=_now)
    name = "correction_seen"


@dataclass(frozen=True)
class ModelPromoted(Event):
    """A new model version became the model in use."""

    version: str = ""
    path: Path = Path()
    previous: str = ""
    at: datetime = field(default_factory=_now)
    name = "model_promoted"


ALL_EVENTS: tuple[type[Event], ...] = (
    DaemonStarted, DaemonStopped, FileSorted, FileReviewed, FileFailed, CorrectionSeen, ModelPromoted,
)
EVENT_NAMES = tuple(e.name for e in ALL_EVENTS)


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def to_dict(event: Event) -> dict[str, Any]:
    """The event as JSON-ready data: {"event": name, <field>: value, ...}; paths and times as strings."""
    return {"event": event.name, **{f.name: _plain(getattr(event, f.name)) for f in fields(event)}}
