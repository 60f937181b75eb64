"""The wheel installs footsort and nothing else at the top level; the shipped plugins ride inside it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_wheel_installs_only_footsort_and_registers_the_shipped_plugins(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path), str(REPO)], check=True, capture_output=True)
    wheel = zipfile.ZipFile(next(tmp_path.glob("footsort-*.whl")))
    names = wheel.namelist()
    assert {n.split("/")[0] for n in names} == {"footsort", next(n.split("/")[0] for n in names if ".dist-info/" in n)}
    for plugin in ("xmp", "notify", "webhook", "export"):
        assert f"footsort/plugins/bundled/{plugin}.py" in names
    entry_points = wheel.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "xmp = footsort.plugins.bundled.xmp" in entry_points
    assert "footsort/service_templates/footsort.service" in names
    assert "footsort/data/default.safetensors" in names
