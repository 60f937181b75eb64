"""`footsort bulk` (local engine) and `footsort apply`, with the colour-reading fake model; no Ray here."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pyarrow")

from bulk_photos import BROKEN, as_sorted, cli, make_photos, sorted_by_footsort_sort  # noqa: E402
from fakes import RED, RecordingHost, write_image  # noqa: E402

from footsort.bulk.apply import CopyPlan, Mover, apply_rows, copy_destination  # noqa: E402
from footsort.bulk.manifest import parse_source, resolve  # noqa: E402
from footsort.bulk.ray_engine import RayPlan  # noqa: E402
from footsort.bulk.results import all_rows, write_rows  # noqa: E402
from footsort.bulk.stages import Row  # noqa: E402
from footsort.errors import FootsortError  # noqa: E402
from footsort.sorting.journal import Journal  # noqa: E402
from footsort.sorting.sorter import Sorter, file_hash  # noqa: E402
from footsort.system import config  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def fake_model(fake_cli: dict) -> None:
    """Every command here gets the colour-reading fake model."""


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    return make_photos(tmp_path / "photos")


def files(box: Path) -> set[str]:
    return {str(p.relative_to(box)) for p in box.rglob("*") if p.is_file()}


@pytest.mark.parametrize("command", ["bulk", "apply"])
def test_help_has_an_example(command: str) -> None:
    result = cli(command, "--help")
    assert result.exit_code == 0 and "Example:" in result.output and f"footsort {command}" in result.output


def test_the_command_module_imports_no_heavy_library() -> None:
    code = ("import sys, footsort.commands.bulk_cmds, footsort.bulk.job, footsort.bulk.apply\n"
            "print(sorted(m for m in ('torch', 'pyarrow', 'ray') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


def test_local_bulk_gives_what_sort_gives(photos: Path, tmp_path: Path) -> None:
    before = files(photos)
    result = cli("bulk", photos, "--out", tmp_path / "r.parquet")
    assert result.exit_code == 0, result.output
    assert "sorted 20 (sapatos 10, tsinelas 10); 5 to review; 4 failed" in result.output
    assert files(photos) == before  # bulk moves nothing
    rows = all_rows(str(tmp_path / "r.parquet"))
    assert len(rows) == 29 and "notes.txt" not in {Path(r.uri).name for r in rows}
    assert as_sorted(rows) == sorted_by_footsort_sort(photos, tmp_path)
    by_name = {Path(r.uri).name: r for r in rows}
    for name in BROKEN:
        assert by_name[name].action == "failed" and by_name[name].error.startswith(str(photos / name))
    red = by_name["red00.jpg"]
    assert red.label == "tsinelas" and red.confidence == pytest.approx(0.95, abs=0.01)
    assert red.model_version == "fake-1" and len(red.content_hash or "") == 64
    assert set(red.probabilities) == {"tsinelas", "sapatos"}
    assert by_name["muddy00.png"].reason.startswith("confidence 0.61 is below the threshold 0.885")


def test_threshold_and_recursive(photos: Path, tmp_path: Path) -> None:
    write_image(photos / "2024" / "deep.jpg", RED, 7)
    write_image(photos / "tsinelas" / "sorted-before.jpg", RED, 8)  # footsort's own folder: never listed
    cli("bulk", "--threshold", "0.5", "--recursive", photos, "--out", tmp_path / "r.parquet")
    rows = {Path(r.uri).name: r for r in all_rows(str(tmp_path / "r.parquet"))}
    assert rows["muddy00.png"].action == "sort" and rows["deep.jpg"].action == "sort"
    assert "sorted-before.jpg" not in rows


def test_manifests_csv_and_parquet_with_relative_paths(photos: Path, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    uris = ["photos/red00.jpg", str(photos / "blue00.jpg"), "photos/missing.jpg", "photos/broken.jpg"]
    with open(tmp_path / "m.csv", "w", newline="") as f:
        csv.writer(f).writerows([["id", "uri"], *[[i, u] for i, u in enumerate(uris)]])
    pq.write_table(pa.table({"uri": uris, "other": [1, 2, 3, 4]}), tmp_path / "m.parquet")
    for manifest in ("m.csv", "m.parquet"):
        out = tmp_path / f"{manifest}.results.parquet"
        assert cli("bulk", tmp_path / manifest, "--out", out).exit_code == 0
        rows = all_rows(str(out))
        assert [r.uri for r in rows] == [str(photos / Path(u).name) for u in uris]
        assert [r.action for r in rows] == ["sort", "sort", "failed", "failed"]
        assert "file not found" in rows[2].error and rows[2].content_hash is None


def test_sources_are_recognised(tmp_path: Path, photos: Path) -> None:
    assert parse_source(str(photos)).kind == "folder"
    assert parse_source(str(photos / "*.jpg")).kind == "glob"
    (tmp_path / "m.csv").write_text("path\nx.jpg\n")
    assert parse_source(str(tmp_path / "m.csv")).kind == "csv"
    assert resolve("a/b.jpg", "/data") == "/data/a/b.jpg"
    assert resolve("s3://bucket/k.jpg", "/data") == "s3://bucket/k.jpg"
    assert resolve("k.jpg", "s3://bucket/prefix") == "s3://bucket/prefix/k.jpg"
    with pytest.raises(FootsortError, match="does not exist"):
        parse_source(str(tmp_path / "nothing"))
    result = cli("bulk", tmp_path / "m.csv", "--out", tmp_path / "r.parquet")
    assert result.exit_code == 1 and "has no `uri` column (its columns: path)" in result.output
    assert not (tmp_path / "r.parquet").exists()  # a failed run leaves no half-written results


def test_glob_source(photos: Path, tmp_path: Path) -> None:
    assert cli("bulk", str(photos / "red0[0-2].jpg"), "--out", tmp_path / "r.parquet").exit_code == 0
    assert sorted(Path(r.uri).name for r in all_rows(str(tmp_path / "r.parquet"))) == ["red00.jpg", "red01.jpg",
                                                                                       "red02.jpg"]


def test_apply_moves_through_the_journal_and_undo_puts_back(photos: Path, tmp_path: Path) -> None:
    before = files(photos)
    cli("bulk", photos, "--out", tmp_path / "r.parquet")
    dry = cli("apply", "--dry-run", tmp_path / "r.parquet")
    assert dry.exit_code == 0 and "dry run, nothing moved: sorted 20" in dry.output
    assert f"sort      {photos / 'red00.jpg'} -> {photos / 'tsinelas/red00.jpg'}" in dry.output
    assert files(photos) == before

    result = cli("apply", tmp_path / "r.parquet")
    assert result.exit_code == 0, result.output
    assert "sorted 20 (sapatos 10, tsinelas 10); 5 to review; 4 failed" in result.output
    assert files(photos) == {"notes.txt"} | {f"tsinelas/red{i:02}.jpg" for i in range(10)} \
        | {f"sapatos/blue{i:02}.jpg" for i in range(10)} | {f"review/muddy{i:02}.png" for i in range(5)} \
        | {f"failed/{n}" for n in BROKEN}
    log = cli("log", "-n", "40", "--json").output
    assert '"label": "tsinelas", "confidence": 0.95' in log and '"model_version": "fake-1"' in log

    again = cli("apply", tmp_path / "r.parquet")  # the photos are gone from where bulk saw them
    assert "29 files vanished" in again.output
    undone = cli("undo")
    assert "put back 29 of 29" in undone.output
    assert files(photos) == before


def test_apply_honours_collisions_changes_and_duplicates(photos: Path, tmp_path: Path) -> None:
    write_image(photos / "tsinelas" / "red00.jpg", RED, 555)  # a different photo already has the name
    (photos / "red01.jpg").write_bytes((photos / "red00.jpg").read_bytes())  # same content as red00
    cli("bulk", photos, "--out", tmp_path / "r.parquet")
    write_image(photos / "red02.jpg", RED, 777)  # changed after bulk looked at it
    result = cli("apply", tmp_path / "r.parquet")
    assert result.exit_code == 0, result.output
    assert (photos / "tsinelas" / "red00 (1).jpg").exists() and (photos / "tsinelas" / "red00.jpg").exists()
    assert (photos / "red01.jpg").exists() and "duplicate" in result.output  # sort.duplicates = skip
    assert (photos / "red02.jpg").exists() and "changed since `footsort bulk`" in result.output


def test_apply_tells_plugins(photos: Path, tmp_path: Path) -> None:
    cli("bulk", photos, "--out", tmp_path / "r.parquet")
    cfg = config.load()
    host = RecordingHost()
    with Journal.open() as journal:
        plan = CopyPlan(tmp_path / "plan.csv", cfg, None, dry_run=False)
        done = list(apply_rows([all_rows(str(tmp_path / "r.parquet"))], Mover(cfg, Sorter(journal), journal, host),
                               plan))
    assert len(done) == 29
    assert sorted(set(host.names())) == ["file_failed", "file_reviewed", "file_sorted"]
    assert host.names().count("file_sorted") == 20 and not (tmp_path / "plan.csv").exists()


def test_object_storage_rows_become_a_copy_plan(tmp_path: Path) -> None:
    rows = [Row("s3://b/in/a.jpg", "sort", "tsinelas", 0.9, content_hash="h1"),
            Row("s3://b/other/a.jpg", "sort", "tsinelas", 0.95, content_hash="h2"),
            Row("s3://b/in/c.jpg", "review", "sapatos", 0.6),
            Row("s3://b/in/d.jpg", "failed", error="not an image")]
    write_rows(str(tmp_path / "r.parquet"), [rows])
    dry = cli("apply", tmp_path / "r.parquet", "--dry-run", "--plan-prefix", "s3://b/sorted")
    assert "would write a copy plan for 4 photo(s)" in dry.output and not (tmp_path / "r.copy-plan.csv").exists()
    result = cli("apply", tmp_path / "r.parquet", "--plan-prefix", "s3://b/sorted")
    assert result.exit_code == 0 and "wrote a copy plan for 4 photo(s)" in result.output
    with open(tmp_path / "r.copy-plan.csv") as f:
        plan = list(csv.DictReader(f))
    assert [p["destination"] for p in plan] == ["s3://b/sorted/tsinelas/a.jpg", "s3://b/sorted/tsinelas/a (1).jpg",
                                                "s3://b/sorted/review/c.jpg", "s3://b/sorted/failed/d.jpg"]
    taken: set[str] = set()
    assert copy_destination(rows[0], config.load(), None, taken) == "s3://b/in/tsinelas/a.jpg"


def test_engine_ray_without_ray_says_how_to_install(photos: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    result = cli("bulk", photos, "--out", tmp_path / "r.parquet", "--engine", "ray")
    assert result.exit_code == 1
    assert result.output.strip() == ("error: --engine ray needs Ray Data, which is not installed: "
                                     "pip install 'footsort[ray]'")


def test_without_pyarrow_says_how_to_install(photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    result = cli("bulk", photos, "--out", tmp_path / "r.parquet")
    assert result.exit_code == 1 and "pip install 'footsort[bulk]'" in result.output


def test_address_needs_the_ray_engine(photos: Path, tmp_path: Path) -> None:
    result = cli("bulk", photos, "--out", tmp_path / "r.parquet", "--address", "auto")
    assert result.exit_code == 1 and "--engine ray" in result.output


def test_ray_plan_spreads_the_work() -> None:
    assert RayPlan.for_cluster({"CPU": 2}) == RayPlan(1, 1, 0, 64, 32)
    assert RayPlan.for_cluster({"CPU": 16}) == RayPlan(4, 2, 0, 64, 32)
    assert RayPlan.for_cluster({"CPU": 64, "GPU": 4}) == RayPlan(4, 1, 1, 256, 32)
    assert RayPlan.for_cluster({"CPU": 64, "GPU": 4}, device="cpu").actor_gpus == 0
    with pytest.raises(FootsortError, match="no GPU"):
        RayPlan.for_cluster({"CPU": 8}, device="cuda")


def test_wrong_paths_are_one_line_errors(photos: Path, tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    result = cli("bulk", photos, "--out", tmp_path / "folder")
    assert result.exit_code == 1 and "is a folder; give a file name" in result.output
    result = cli("apply", tmp_path / "nothing.parquet")
    assert result.exit_code == 1 and "do not exist; make them with `footsort bulk" in result.output
    (tmp_path / "junk.parquet").write_text("not parquet")
    result = cli("apply", tmp_path / "junk.parquet")
    assert result.exit_code == 1 and "is not a footsort bulk results file" in result.output


def test_object_storage_photos_through_fsspec(photos: Path, tmp_path: Path) -> None:
    import fsspec

    fs = fsspec.filesystem("memory")  # an object store inside this process, as s3fs or gcsfs would be
    for name in ("red00.jpg", "blue00.jpg", "broken.jpg"):
        fs.pipe(f"/bucket/in/{name}", (photos / name).read_bytes())
    result = cli("bulk", "memory://bucket/in", "--out", tmp_path / "r.parquet")
    assert result.exit_code == 0, result.output
    rows = {r.uri: r for r in all_rows(str(tmp_path / "r.parquet"))}
    base = "memory:///bucket/in"  # how fsspec names the memory store's keys
    assert sorted(rows) == [f"{base}/blue00.jpg", f"{base}/broken.jpg", f"{base}/red00.jpg"]
    assert rows[f"{base}/red00.jpg"].label == "tsinelas"
    assert rows[f"{base}/red00.jpg"].content_hash == file_hash(photos / "red00.jpg")
    assert rows[f"{base}/broken.jpg"].error == f"{base}/broken.jpg: not a recognised image format"
    result = cli("apply", tmp_path / "r.parquet")
    assert "wrote a copy plan for 3 photo(s)" in result.output
    assert fs.ls("/bucket/in", detail=False) == ["/bucket/in/blue00.jpg", "/bucket/in/broken.jpg",
                                                 "/bucket/in/red00.jpg"]  # nothing moved in the store


def test_a_callers_classifier_factory_is_what_each_ray_actor_calls(fake_factory) -> None:
    from footsort.bulk.stages import FactorySource

    asked = []

    def factory(cfg, model_path=None, fuse="now"):
        asked.append((cfg.model.device, model_path, fuse))
        return fake_factory(cfg)

    source = FactorySource(factory, config.load(), Path("m.safetensors"))
    assert source.load(device="cpu", fuse="never").classes == ("sapatos", "tsinelas")
    assert asked == [("cpu", Path("m.safetensors"), "never")]
