"""reloading: the daemon's classifier follows the model in use between batches (fake models, real registry)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from fakes import BLUE, RED, ColourClassifier, RecordingHost, write_image

from footsort.model import registry
from footsort.sorting import daemon
from footsort.sorting.journal import Journal
from footsort.sorting.pipeline import as_provider
from footsort.sorting.reloading import ReloadingClassifier, follow_in_use
from footsort.system.config import load as load_config
from tests.helpers_model import tiny_meta, tiny_model


class Loader:
    """Loads a fake classifier named after the model in use, counting loads."""

    def __init__(self, fail: bool = False, classes: tuple[str, ...] | None = None) -> None:
        self.loads = 0
        self.fail = fail
        self.classes = classes

    def __call__(self) -> ColourClassifier:
        self.loads += 1
        if self.fail and self.loads > 1:
            raise RuntimeError("truncated model file")
        clf = ColourClassifier(registry.current_version() or "default")
        if self.classes and self.loads > 1:
            clf.classes = self.classes
        return clf


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny model file, stored under new version names as needed (saving is the slow part)."""
    from footsort.model import checkpoint

    model = tiny_model()
    return checkpoint.save(model, tiny_meta(model), tmp_path_factory.mktemp("m") / "tiny.safetensors")


def promote_copy(weights_file: Path) -> str:
    """Store a new version (a copy of the tiny model file, renamed) and make it the model in use."""
    from dataclasses import replace

    from footsort.model import checkpoint

    model, meta = checkpoint.load(weights_file)
    meta = replace(meta, version=checkpoint.new_version_id())
    registry.add_version(model, meta)
    registry.use(meta.version)
    return meta.version


def test_no_change_no_reload() -> None:
    loader = Loader()
    clf = ReloadingClassifier(loader)
    assert clf.reload_if_changed() is clf.current and loader.loads == 1
    assert clf.version == "default" and clf.classes == ColourClassifier.classes and clf.input_size == 64
    assert clf.batches == []  # other attributes come from the current model


def test_a_promotion_is_picked_up_once(weights_file: Path) -> None:
    loader = Loader()
    clf = ReloadingClassifier(loader)
    v1 = promote_copy(weights_file)
    first = clf.reload_if_changed()
    assert first.version == v1 and clf.version == v1 and loader.loads == 2
    assert clf.reload_if_changed() is first and loader.loads == 2
    registry.rollback()
    assert clf.reload_if_changed().version == "default"


def test_a_broken_or_foreign_model_keeps_the_current_one(weights_file: Path) -> None:
    broken = ReloadingClassifier(Loader(fail=True))
    old = broken.current
    promote_copy(weights_file)
    assert broken.reload_if_changed() is old
    foreign = ReloadingClassifier(Loader(classes=("botas", "sapatos")))
    old = foreign.current
    promote_copy(weights_file)
    assert foreign.reload_if_changed() is old


def test_the_pipeline_sees_it_as_a_reloading_source() -> None:
    clf = ReloadingClassifier(Loader())
    assert as_provider(clf)() is clf.current


def test_follow_in_use_only_when_no_model_file_is_pinned(tmp_path: Path) -> None:
    fake = ColourClassifier()
    cfg = load_config()
    assert follow_in_use(fake, cfg, tmp_path / "m.safetensors") is fake
    assert follow_in_use(fake, load_config(overrides={"model": {"path": str(tmp_path / "m.safetensors")}})) is fake
    followed = follow_in_use(fake, cfg)
    assert isinstance(followed, ReloadingClassifier) and followed.current is fake


def test_a_running_daemon_switches_between_batches_without_losing_or_repeating_a_file(tmp_path: Path,
                                                                                      weights_file: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    cfg = load_config(overrides={"watch": {"settle_seconds": 0.1, "rescan_seconds": 0.5}})
    journal = Journal.open()
    stop = threading.Event()
    clf = ReloadingClassifier(Loader())
    counts: Counter[str] = Counter()
    thread = threading.Thread(target=lambda: counts.update(daemon.run(
        [inbox], cfg, clf, host=RecordingHost(), journal=journal, stop=stop)), daemon=True)
    thread.start()

    def wait_for(n: int) -> None:
        deadline = time.monotonic() + 15
        while len([p for p in inbox.rglob("*.jpg") if p.parent != inbox]) < n:
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.05)

    for i in range(3):
        write_image(inbox / f"a{i}.jpg", RED, i)
    wait_for(3)
    version = promote_copy(weights_file)
    for i in range(3):
        write_image(inbox / f"b{i}.jpg", BLUE, 10 + i)
    wait_for(6)
    stop.set()
    thread.join(10)
    rows = [e for e in journal.recent(50) if e.action == "sort"]
    journal.close()
    assert sorted(e.source.name for e in rows) == ["a0.jpg", "a1.jpg", "a2.jpg", "b0.jpg", "b1.jpg", "b2.jpg"]
    assert {e.details.model_version for e in rows if e.source.name.startswith("a")} == {"default"}
    assert {e.details.model_version for e in rows if e.source.name.startswith("b")} == {version}
    assert counts["sort"] == 6 and not list(inbox.glob("*.jpg"))
