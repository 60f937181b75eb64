"""Shared fixtures: every test gets its own FOOTSORT_HOME so nothing touches the real user dirs."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SHARED_WEIGHTS = SHARED / "weights" / "mobilenet_v2_imagenet.pth"
DEV_DATA = SHARED / "data" / "footwear-dev"
STREET_DATA = SHARED / "data" / "footwear-street"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every platformdirs location at a fresh temporary folder."""
    home = tmp_path_factory.mktemp("footsort-home")
    monkeypatch.setenv("FOOTSORT_HOME", str(home))
    for var in list(__import__("os").environ):
        if var.startswith("FOOTSORT_") and var != "FOOTSORT_HOME":
            monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def fake_factory():
    """For library calls that take a ClassifierFactory (`load=`): it gives the colour-reading fake."""
    from fakes import colour_factory

    return colour_factory


@pytest.fixture
def fake_cli(monkeypatch: pytest.MonkeyPatch) -> dict:
    """`footsort` run through CliRunner in this test gets the colour-reading fake as ctx.obj["classifier_factory"].

    The object becomes the default ctx.obj of the `footsort` group (click's context_settings), which is what
    `CliRunner().invoke(main, args, obj=fake_obj())` gives one call; a call passing its own obj includes this one
    (`obj={**fake_cli, "platform": "linux"}`).
    For footsort in another process, run tests/fake_footsort.py instead of `python -m footsort.cli`.
    """
    from fakes import fake_obj

    from footsort.cli import main

    obj = fake_obj()
    monkeypatch.setitem(main.context_settings, "obj", obj)
    return obj


@pytest.fixture(scope="session")
def shared_weights() -> Path:
    """The offline ImageNet MobileNetV2 weights in ../shared (required: CI has them)."""
    assert SHARED_WEIGHTS.exists(), f"missing {SHARED_WEIGHTS}: the tests need ../shared beside the checkout"
    return SHARED_WEIGHTS
