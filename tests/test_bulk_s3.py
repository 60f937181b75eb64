"""`footsort bulk` and `footsort apply` against a real S3 API: moto's server on localhost, read through s3fs.

The store is found the way a MinIO user points footsort at theirs (docs/bulk.md): AWS_ENDPOINT_URL and the
usual AWS_* credentials in the environment. Nothing here reaches the network.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Iterator

import pytest
from bulk_photos import BROKEN, as_sorted, cli, make_photos, sorted_by_footsort_sort

from footsort.bulk.results import all_rows
from footsort.sorting.sorter import file_hash

BUCKET = "shop"
PHOTOS = f"s3://{BUCKET}/photos"
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(autouse=True)
def fake_model(fake_cli: dict) -> None:
    """Every command here gets the colour-reading fake model."""


def _forget_s3_clients() -> None:
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()  # fsspec caches filesystems, and with them the endpoint they found


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, Path]]:
    """(a boto3 client, the local folder of the photos), the photos uploaded under s3://shop/photos/."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    none = str(tmp_path_factory.mktemp("no-aws-config") / "none")
    with pytest.MonkeyPatch.context() as mp:
        for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
            mp.delenv(var, raising=False)
        for var, value in {**AWS_ENV, "AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_CONFIG_FILE": none,
                           "AWS_SHARED_CREDENTIALS_FILE": none}.items():
            mp.setenv(var, value)
        _forget_s3_clients()
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        box = make_photos(tmp_path_factory.mktemp("store") / "photos", n=4)  # 4 red, 4 blue, 2 muddy, 4 broken
        for f in sorted(box.iterdir()):
            client.put_object(Bucket=BUCKET, Key=f"photos/{f.name}", Body=f.read_bytes())
        try:
            yield client, box
        finally:
            _forget_s3_clients()
            server.stop()


def objects(client) -> dict[str, str]:
    """key -> ETag of everything in the bucket."""
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", [])}


def test_a_prefix_gives_what_sort_and_the_local_folder_give(store, tmp_path: Path) -> None:
    client, box = store
    result = cli("bulk", f"{PHOTOS}/", "--out", tmp_path / "s3.parquet", "--engine", "local")
    assert result.exit_code == 0, result.output
    assert "sorted 8 (sapatos 4, tsinelas 4); 2 to review; 4 failed" in result.output
    rows = all_rows(str(tmp_path / "s3.parquet"))
    photos = sorted(p.name for p in box.iterdir() if p.name != "notes.txt")
    assert sorted(r.uri for r in rows) == [f"{PHOTOS}/{name}" for name in photos]  # one row per photo
    assert as_sorted(rows) == sorted_by_footsort_sort(box, tmp_path)
    by_name = {Path(r.uri).name: r for r in rows}
    for name in BROKEN:
        assert by_name[name].action == "failed" and by_name[name].error.startswith(f"{PHOTOS}/{name}: ")
    assert by_name["empty.jpg"].error == f"{PHOTOS}/empty.jpg: empty file (0 bytes)"

    assert cli("bulk", box, "--out", tmp_path / "local.parquet").exit_code == 0
    local = {Path(r.uri).name: r for r in all_rows(str(tmp_path / "local.parquet"))}
    for name, row in by_name.items():
        there = local[name]
        assert (row.action, row.label, row.confidence, row.reason.replace(PHOTOS, str(box))) == \
            (there.action, there.label, there.confidence, there.reason)
        assert row.content_hash == there.content_hash
        if row.action != "failed":
            assert row.content_hash == file_hash(box / name)


def test_csv_manifests_of_s3_uris(store, tmp_path: Path) -> None:
    client, box = store
    uris = [f"{PHOTOS}/red00.jpg", f"{PHOTOS}/blue01.jpg", f"{PHOTOS}/muddy00.png", f"{PHOTOS}/broken.jpg",
            f"{PHOTOS}/not-there.jpg", "photos/red01.jpg"]  # the last relative to the manifest's own prefix
    text = "id,uri\n" + "".join(f"{i},{u}\n" for i, u in enumerate(uris))
    client.put_object(Bucket=BUCKET, Key="manifest.csv", Body=text.encode())
    (tmp_path / "manifest.csv").write_text(text.replace(",photos/", f",{PHOTOS}/"))
    expected = [u if "://" in u else f"s3://{BUCKET}/{u}" for u in uris]
    for manifest, out in ((tmp_path / "manifest.csv", str(tmp_path / "m.parquet")),
                          (f"s3://{BUCKET}/manifest.csv", f"s3://{BUCKET}/results/m.parquet")):
        result = cli("bulk", manifest, "--out", out, "--engine", "local")
        assert result.exit_code == 0, result.output
        rows = all_rows(out)
        assert [r.uri for r in rows] == expected
        assert [(r.action, r.label) for r in rows] == [("sort", "tsinelas"), ("sort", "sapatos"),
                                                       ("review", "tsinelas"), ("failed", ""), ("failed", ""),
                                                       ("sort", "tsinelas")]
        assert rows[3].error == f"{PHOTOS}/broken.jpg: not a recognised image format"
        assert rows[4].error == f"{PHOTOS}/not-there.jpg: file not found" and rows[4].content_hash is None
    assert "results/m.parquet" in objects(client)


def test_a_parquet_manifest_folder_of_parts(store, tmp_path: Path) -> None:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    client, _ = store
    for i, names in enumerate((["red02.jpg", "blue02.jpg"], ["text.png"])):  # as Spark or Ray write a manifest
        buf = io.BytesIO()
        pq.write_table(pa.table({"uri": [f"{PHOTOS}/{n}" for n in names], "size": [1] * len(names)}), buf)
        client.put_object(Bucket=BUCKET, Key=f"inventory.parquet/part-{i}.parquet", Body=buf.getvalue())
    result = cli("bulk", f"s3://{BUCKET}/inventory.parquet", "--out", tmp_path / "r.parquet")
    assert result.exit_code == 0, result.output
    assert [(Path(r.uri).name, r.action) for r in all_rows(str(tmp_path / "r.parquet"))] == \
        [("red02.jpg", "sort"), ("blue02.jpg", "sort"), ("text.png", "failed")]


def test_apply_writes_a_copy_plan_and_changes_nothing_in_the_bucket(store, tmp_path: Path) -> None:
    import s3fs

    client, box = store
    assert cli("bulk", PHOTOS, "--out", tmp_path / "r.parquet").exit_code == 0
    before = objects(client)
    dry = cli("apply", "--dry-run", tmp_path / "r.parquet")
    assert dry.exit_code == 0 and "would write a copy plan for 14 photo(s)" in dry.output
    assert not (tmp_path / "r.copy-plan.csv").exists()
    result = cli("apply", tmp_path / "r.parquet")
    assert result.exit_code == 0, result.output
    assert f"wrote a copy plan for 14 photo(s) in object storage: {tmp_path / 'r.copy-plan.csv'}" in result.output
    assert objects(client) == before  # nothing moved, deleted or rewritten
    with open(tmp_path / "r.copy-plan.csv", newline="") as f:
        plan = {Path(p["source"]).name: p for p in csv.DictReader(f)}
    assert len(plan) == 14 and "notes.txt" not in plan
    assert plan["red00.jpg"]["destination"] == f"{PHOTOS}/tsinelas/red00.jpg"
    assert plan["blue02.jpg"]["destination"] == f"{PHOTOS}/sapatos/blue02.jpg"
    assert plan["muddy01.png"]["destination"] == f"{PHOTOS}/review/muddy01.png"
    assert plan["broken.jpg"]["destination"] == f"{PHOTOS}/failed/broken.jpg"
    assert plan["red00.jpg"]["content_hash"] == file_hash(box / "red00.jpg")

    fs = s3fs.S3FileSystem()  # the copy script docs/bulk.md shows, run against the same store
    for p in plan.values():
        fs.copy(p["source"], p["destination"])
    after = objects(client)
    assert {k: v for k, v in after.items() if k in before} == before
    assert after["photos/tsinelas/red00.jpg"] == before["photos/red00.jpg"]
    for key in [k for k in after if k not in before]:
        client.delete_object(Bucket=BUCKET, Key=key)  # the other tests list photos/ as it was


@pytest.mark.parametrize("source", [f"s3://{BUCKET}/nothing/", "s3://no-such-bucket/photos/",
                                    f"s3://{BUCKET}/missing.csv"])
def test_a_missing_prefix_bucket_or_manifest_is_one_line(store, tmp_path: Path, source: str) -> None:
    result = cli("bulk", source, "--out", tmp_path / "r.parquet")
    assert result.exit_code == 1
    assert result.output.strip() == f"error: {source} does not exist (no such bucket, prefix or object)"
    assert not (tmp_path / "r.parquet").exists()


def test_results_in_a_missing_bucket_are_refused_before_any_work(store, tmp_path: Path) -> None:
    _, box = store
    result = cli("bulk", box, "--out", "s3://no-such-bucket/r.parquet")
    assert result.exit_code == 1
    assert result.output.strip() == "error: s3://no-such-bucket does not exist (no such bucket, prefix or object)"


def test_the_endpoint_comes_from_the_environment(store) -> None:
    import s3fs

    assert os.environ["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    assert f"{BUCKET}/photos" in s3fs.S3FileSystem().ls(BUCKET)  # no endpoint_url given: botocore found it


def test_copies_a_plan_made_are_not_listed_again_and_gone_objects_are_not_planned(store, tmp_path: Path) -> None:
    import s3fs

    client, _ = store
    before = objects(client)
    assert cli("bulk", PHOTOS, "--out", tmp_path / "r.parquet").exit_code == 0
    assert cli("apply", tmp_path / "r.parquet").exit_code == 0
    fs = s3fs.S3FileSystem()
    with open(tmp_path / "r.copy-plan.csv", newline="") as f:
        for p in csv.DictReader(f):
            fs.copy(p["source"], p["destination"])
    try:
        again = cli("bulk", PHOTOS, "--recursive", "--out", tmp_path / "again.parquet")
        assert again.exit_code == 0, again.output
        listed = sorted(r.uri for r in all_rows(str(tmp_path / "again.parquet")))
        assert listed == sorted(r.uri for r in all_rows(str(tmp_path / "r.parquet")))  # not the tsinelas/ copies
    finally:
        for key in [k for k in objects(client) if k not in before]:
            client.delete_object(Bucket=BUCKET, Key=key)

    (tmp_path / "m.csv").write_text(f"uri\n{PHOTOS}/red00.jpg\n{PHOTOS}/not-there.jpg\n{PHOTOS}/broken.jpg\n")
    assert cli("bulk", tmp_path / "m.csv", "--out", tmp_path / "m.parquet").exit_code == 0
    result = cli("apply", tmp_path / "m.parquet")
    assert result.exit_code == 0, result.output
    with open(tmp_path / "m.copy-plan.csv", newline="") as f:
        planned = [Path(p["source"]).name for p in csv.DictReader(f)]
    assert planned == ["red00.jpg", "broken.jpg"]  # the unreadable photo is copied to failed/, the missing one is not
