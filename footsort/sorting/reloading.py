"""Hot reload: a classifier that switches to a newly promoted model version between batches.

The pipeline asks its classifier source for a classifier once per batch (`as_provider` calls
`reload_if_changed()`), so a switch happens only between batches: a batch in flight finishes with the
model it started with, and no file is dropped or handled twice. The check is one stat of the
registry's state file; a version that cannot be loaded, or whose classes differ from the running
daemon's folders, is logged and the current model stays.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Hashable, Sequence

from loguru import logger
from PIL import Image

from footsort.model.prediction import ClassifierFactory, ImageClassifier, Prediction


def _default_token() -> Hashable:
    from footsort.model import registry

    return registry.change_token()


class ReloadingClassifier:
    """The model in use; `reload_if_changed()` loads the newly promoted one when the registry changed."""

    def __init__(self, load: Callable[[], ImageClassifier], token: Callable[[], Hashable] = _default_token,
                 initial: ImageClassifier | None = None,
                 on_switch: Callable[[ImageClassifier, ImageClassifier], None] | None = None) -> None:
        self._load = load
        self._token = token
        self._seen = token()
        self.current: ImageClassifier = initial if initial is not None else load()
        self._on_switch = on_switch

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names of the current model."""
        return tuple(self.current.classes)

    @property
    def version(self) -> str:
        """Version of the current model."""
        return self.current.version

    @property
    def input_size(self) -> int:
        """Input size of the current model."""
        return self.current.input_size

    def predict_images(self, images: Sequence[Image.Image], *args: Any, **kw: Any) -> list[Prediction]:
        """Label images with the current model."""
        return self.current.predict_images(images, *args, **kw)  # type: ignore[call-arg]

    def __getattr__(self, name: str) -> Any:  # anything else (iter_paths, meta, ...) comes from the current model
        if name == "current" or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.current, name)

    def reload_if_changed(self) -> ImageClassifier:
        """The classifier to use for the next batch: the newly promoted model when the registry changed."""
        token = self._token()
        if token == self._seen:
            return self.current
        self._seen = token
        old = self.current
        try:
            fresh = self._load()
        except Exception as exc:  # a broken model file must not stop sorting
            logger.error(f"a new model version was promoted but could not be loaded ({exc}); "
                         f"still using {old.version}")
            return old
        if tuple(fresh.classes) != tuple(old.classes):
            logger.error(f"model {fresh.version} has classes {', '.join(fresh.classes)} but this daemon sorts into "
                         f"{', '.join(old.classes)}; still using {old.version}. Restart the daemon to switch")
            return old
        if fresh.version == old.version:
            return old
        self.current = fresh
        logger.info(f"switched model {old.version or 'default'} -> {fresh.version} (the model in use changed)")
        if self._on_switch is not None:
            try:
                self._on_switch(old, fresh)
            except Exception as exc:
                logger.error(f"after switching to model {fresh.version}: {exc}")
        return fresh


def follow_in_use(classifier: ImageClassifier, cfg: Any, model_path: Path | None = None,
                  load: ClassifierFactory | None = None) -> Any:
    """For the daemon: follow the model in use (hot reload), unless a model file was pinned (--model, [model] path).

    `load` builds the newly promoted model (default: footsort.sorting.pipeline.load_classifier).
    """
    if model_path or getattr(getattr(cfg, "model", None), "path", ""):
        return classifier
    from footsort.sorting.pipeline import load_classifier

    build = load or load_classifier
    return ReloadingClassifier(lambda: build(cfg, fuse="background"), initial=classifier)
