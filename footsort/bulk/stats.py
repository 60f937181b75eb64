"""What a bulk run did and where its time went."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Stats:
    """Counts by action and label, wall time, and seconds spent per stage (summed over threads/workers)."""

    engine: str
    started: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0
    counts: Counter = field(default_factory=Counter)
    labels: Counter = field(default_factory=Counter)
    stages: dict = field(default_factory=dict)
    detail: str = ""  # the engine's own report (Ray Data's per-operator statistics)

    @property
    def photos(self) -> int:
        return sum(self.counts.values())

    def add(self, stage: str, seconds: float) -> None:
        self.stages[stage] = self.stages.get(stage, 0.0) + seconds

    def count(self, action: str, label: str = "", n: int = 1) -> None:
        self.counts[action] += n
        if action == "sort" and label:
            self.labels[label] += n

    def finish(self) -> "Stats":
        self.seconds = time.perf_counter() - self.started
        return self

    def rate(self) -> float:
        """Photos per second of wall time."""
        return self.photos / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """`sorted 12 (sapatos 5, tsinelas 7); 3 to review; 1 failed` plus the pace."""
        from footsort.sorting.pipeline import summary

        said = summary(self.counts, self.labels)
        return f"{said}; {self.photos} photos in {self.seconds:.1f} s ({self.rate():.1f} photos/s, {self.engine})"
