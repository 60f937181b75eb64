"""`footsort bulk --engine ray` on a real local Ray (2 CPUs, started once for this module)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from bulk_photos import as_sorted, cli, make_photos, sorted_by_footsort_sort  # noqa: E402

from footsort.bulk.results import all_rows  # noqa: E402

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module", autouse=True)
def local_ray(tmp_path_factory: pytest.TempPathFactory):
    """One small Ray for the module; its workers can import the test fakes."""
    home = tmp_path_factory.mktemp("ray-footsort-home")
    path = os.pathsep.join([str(TESTS), str(TESTS.parent), os.environ.get("PYTHONPATH", "")])
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 2**20, logging_level="ERROR",
             runtime_env={"env_vars": {"PYTHONPATH": path, "FOOTSORT_HOME": str(home)}})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_photos(tmp_path_factory.mktemp("ray") / "photos")


@pytest.fixture(scope="module")
def tiny_model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from helpers_model import tiny_meta, tiny_model

    from footsort.model.checkpoint import save

    model = tiny_model()
    return save(model, tiny_meta(model), tmp_path_factory.mktemp("model") / "tiny.safetensors")


def by_name(rows):
    return {Path(r.uri).name: r for r in rows}


def test_ray_bulk_gives_what_sort_and_the_local_engine_give(photos: Path, tmp_path: Path, fake_cli: dict) -> None:
    # the fake travels to the Ray actors as a pickled factory (bulk.stages.FactorySource); they import `fakes`
    result = cli("bulk", photos, "--out", tmp_path / "ray.parquet", "--engine", "ray", "--batch-size", "8")
    assert result.exit_code == 0, result.output
    assert "sorted 20 (sapatos 10, tsinelas 10); 5 to review; 4 failed" in result.output
    ray_rows = all_rows(str(tmp_path / "ray.parquet"))
    assert len(ray_rows) == 29  # broken photos are rows with an error, not a failed job
    assert as_sorted(ray_rows) == sorted_by_footsort_sort(photos, tmp_path)
    assert cli("bulk", photos, "--out", tmp_path / "local.parquet").exit_code == 0
    local = by_name(all_rows(str(tmp_path / "local.parquet")))
    for name, row in by_name(ray_rows).items():
        assert (row.content_hash, row.error, row.reason) == (local[name].content_hash, local[name].error,
                                                             local[name].reason)


def test_ray_with_a_model_file_and_a_manifest(photos: Path, tiny_model_file: Path, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = ["red00.jpg", "blue03.jpg", "muddy01.png", "truncated.jpg", "gone.jpg"]
    pq.write_table(pa.table({"uri": [str(photos / n) for n in names]}), tmp_path / "manifest.parquet")
    flags = ("--model", tiny_model_file, "--threshold", "0.5")
    result = cli("bulk", tmp_path / "manifest.parquet", "--out", tmp_path / "ray.parquet", "--engine", "ray", *flags)
    assert result.exit_code == 0, result.output
    assert cli("bulk", tmp_path / "manifest.parquet", "--out", tmp_path / "local.parquet", *flags).exit_code == 0
    ray_rows, local = by_name(all_rows(str(tmp_path / "ray.parquet"))), by_name(all_rows(str(tmp_path / "local.parquet")))
    assert sorted(ray_rows) == sorted(names)
    assert [ray_rows[n].action for n in names] == [local[n].action for n in names] == \
        ["sort", "sort", "sort", "failed", "failed"]
    for n in names[:3]:  # the same model file on the actors: the same answer
        assert ray_rows[n].label == local[n].label
        assert ray_rows[n].confidence == pytest.approx(local[n].confidence, abs=1e-4)
        assert ray_rows[n].model_version == local[n].model_version != ""
    assert "file not found" in ray_rows["gone.jpg"].error
