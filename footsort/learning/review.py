"""`footsort review`: the photos waiting in review/, what the model said about each, a person's choice.

The choice is a journaled move into the class folder (footsort.sorting.labelling), which `retrain` learns
from as a correction. Asking for keys and printing stay in the command (footsort/commands/learn_cmds.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from footsort.learning import corrections
from footsort.model.prediction import ImageClassifier, Prediction
from footsort.sorting import labelling
from footsort.sorting.sorter import Sorter

WHERE = "footsort review"  # named in the journal's reason for each move


@dataclass(frozen=True)
class Waiting:
    """A photo in the review folder of a library."""

    root: Path  # the library holding the class folders
    path: Path


def waiting(roots: Sequence[Path], review_folder: str) -> list[Waiting]:
    """Every photo waiting in the review folders of `roots` (not their subfolders), library by library, by name."""
    from footsort.system.images_on_disk import image_files

    return [Waiting(root, p) for root in roots for p in image_files(root / review_folder, recursive=False)]


def recorded(history: Mapping[str, Sequence[corrections.Decision]], content: str) -> Prediction | None:
    """The model's latest journaled prediction for this content (None when no model said anything)."""
    rows = [d for d in history.get(content, ()) if d.by_model and d.probabilities]
    return Prediction.from_probabilities(rows[-1].probabilities, rows[-1].model_version) if rows else None


def predict(clf: ImageClassifier, path: Path) -> Prediction | None:
    """The classifier's prediction for one photo; None when it cannot be read as an image."""
    from footsort.errors import UnreadableImage
    from footsort.model.imaging import load_rgb

    try:
        return clf.predict_images([load_rgb(path, min_side=getattr(clf, "input_size", None))])[0]
    except UnreadableImage:
        return None


class Guesses:
    """What the model said about each photo: as journaled when it was sorted, else asked now (loaded once, if needed)."""

    def __init__(self, history: Mapping[str, Sequence[corrections.Decision]],
                 load: Callable[[], ImageClassifier]) -> None:
        self.history = history
        self._load = load
        self._clf: ImageClassifier | None = None

    def of(self, path: Path, content: str) -> Prediction | None:
        """The model's prediction for this photo (None when it cannot be read)."""
        said = recorded(self.history, content)
        if said is not None:
            return said
        if self._clf is None:
            self._clf = self._load()
        return predict(self._clf, path)


def label(sorter: Sorter, photo: Waiting, content: str, choice: str, said: Prediction | None, host: object) -> Path:
    """Move the photo into `choice`'s folder (journaled; a dry-run sorter moves nothing) and tell plugins of the
    correction; where it went (raises Vanished, OSError)."""
    r = labelling.Relabel(photo.path, photo.root, choice, corrections.REVIEW, content,
                          dict(said.probabilities) if said else {})
    dest = labelling.relabel(sorter, r, WHERE)
    if not sorter.dry_run:
        labelling.announce([(r, dest)], host)
    return dest
