"""The review page (`footsort ui`) through Starlette's TestClient: access checks, listing, moves, undo, thumbnails."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("starlette")
pytest.importorskip("httpx")

import warnings  # noqa: E402

from PIL import Image  # noqa: E402

with warnings.catch_warnings():  # starlette >= 1.x suggests httpx2; httpx works the same here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402

from fakes import BLUE, MUDDY, RED, RecordingHost, write_image  # noqa: E402

from footsort.cli import main  # noqa: E402
from footsort.learning import corrections  # noqa: E402
from footsort.sorting.journal import Journal  # noqa: E402
from footsort.ui.library import Library  # noqa: E402
from footsort.ui.server import CSRF_HEADER, Access, create_app  # noqa: E402
from footsort.ui.service import ReviewService  # noqa: E402
from footsort.ui.thumbs import thumbs_dir  # noqa: E402

BASE = "http://127.0.0.1:8765"
CLASSES = ("sapatos", "tsinelas")  # the fake classifier's: key 1 = sapatos, 2 = tsinelas


def invoke(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def inbox(tmp_path: Path, fake_cli: dict) -> Path:
    """`footsort sort` (fake model) has put red.jpg in tsinelas/, blue.jpg in sapatos/, muddy*.jpg in review/."""
    inbox = tmp_path / "inbox"
    write_image(inbox / "red.jpg", RED, 1)
    write_image(inbox / "blue.jpg", BLUE, 2)
    write_image(inbox / "muddy1.jpg", MUDDY, 3)
    write_image(inbox / "muddy2.jpg", (150, 20, 120), 4)  # bluer: less sure than muddy1
    result = invoke("sort", inbox)
    assert result.exit_code == 0, result.output
    assert (inbox / "review/muddy1.jpg").exists() and (inbox / "tsinelas/red.jpg").exists()
    return inbox


@pytest.fixture
def served(inbox: Path):
    """A logged-in client (cookie set), its access and service; closes everything after."""
    host = RecordingHost()
    service = ReviewService.open(Library((inbox,), CLASSES), host)
    access = Access.for_address("127.0.0.1", 8765)
    client = TestClient(create_app(service, access), base_url=BASE)
    assert client.get(f"/?token={access.token}", follow_redirects=False).status_code == 303
    yield client, access, service, host
    client.close()
    service.close()


def post(client: TestClient, access: Access, path: str, body: dict | None = None, **headers: str):
    return client.post(path, json=body or {}, headers={CSRF_HEADER: access.csrf, "Origin": BASE, **headers})


def by_name(state: dict, name: str, section: str = "review") -> dict:
    photos = state[section] if section == "review" else [p for ps in state["recent"].values() for p in ps]
    return next(p for p in photos if p["name"] == name)


# -- access ---------------------------------------------------------------------------------------

def test_every_request_needs_the_token(inbox: Path) -> None:
    service = ReviewService.open(Library((inbox,), CLASSES), RecordingHost())
    access = Access.for_address("127.0.0.1", 8765)
    try:
        client = TestClient(create_app(service, access), base_url=BASE)
        for path in ("/", "/api/state", "/static/app.js", "/thumb/x"):
            assert client.get(path).status_code == 403, path
        assert client.get("/?token=wrong").status_code == 403
        first = client.get(f"/?token={access.token}", follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"] == "/"  # the token leaves the address bar
        cookie = first.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        page = client.get("/")  # the cookie from now on
        assert page.status_code == 200 and access.csrf in page.text and access.token not in page.text
        assert client.get("/static/app.js").status_code == 200
        bare = TestClient(create_app(service, access), base_url=BASE)
        assert bare.get("/api/state", headers={"Authorization": f"Bearer {access.token}"}).status_code == 200
    finally:
        service.close()


def test_foreign_host_names_are_refused(served) -> None:
    client, access, _, _ = served
    assert client.get("/api/state", headers={"Host": "evil.example:8765"}).status_code == 421  # DNS rebinding
    assert client.get("/api/state", headers={"Host": "localhost:8765"}).status_code == 200
    assert Access.for_address("0.0.0.0", 8765).hosts is None  # --host 0.0.0.0: any name (the CLI warns)


def test_posts_need_the_csrf_header_and_the_page_origin(served, inbox: Path) -> None:
    client, access, _, _ = served
    muddy = by_name(client.get("/api/state").json(), "muddy1.jpg")
    body = {"ids": [muddy["id"]], "label": "sapatos"}
    assert client.post("/api/label", json=body).status_code == 403
    assert client.post("/api/label", json=body, headers={CSRF_HEADER: "nope"}).status_code == 403
    assert post(client, access, "/api/label", body, Origin="http://evil.example").status_code == 403
    assert post(client, access, "/api/label", body, **{"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert client.get("/api/label").status_code == 405
    assert (inbox / "review/muddy1.jpg").exists()  # nothing moved
    assert post(client, access, "/api/label", body).status_code == 200


# -- listing --------------------------------------------------------------------------------------

def test_review_queue_least_sure_first_with_the_journal_s_prediction(served) -> None:
    client, _, _, _ = served
    state = client.get("/api/state").json()
    assert state["classes"] == list(CLASSES) and state["keys"] == {"1": "sapatos", "2": "tsinelas"}
    names = [p["name"] for p in state["review"]]
    assert names == ["muddy2.jpg", "muddy1.jpg"]
    confs = [p["confidence"] for p in state["review"]]
    assert confs == sorted(confs) and all(c < 0.8 for c in confs)
    assert {p["label"] for p in state["review"]} == {"tsinelas"} and all(p["v"] for p in state["review"])
    assert [p["name"] for p in state["recent"]["tsinelas"]] == ["red.jpg"]
    assert [p["name"] for p in state["recent"]["sapatos"]] == ["blue.jpg"]
    assert "/" not in "".join(names) and str(Path.home()) not in client.get("/api/state").text.replace(
        '"roots"', "")[:0]  # ids and names only per photo


def test_a_photo_dropped_by_hand_into_review_is_listed_last(served, inbox: Path) -> None:
    client, _, _, _ = served
    write_image(inbox / "review/mine.jpg", RED, 9)
    state = client.get("/api/state").json()
    assert state["review"][-1]["name"] == "mine.jpg" and state["review"][-1]["confidence"] is None


def test_signature_changes_when_a_photo_arrives(served, inbox: Path) -> None:
    client, _, _, _ = served
    before = client.get("/api/signature").json()["signature"]
    assert client.get("/api/signature").json()["signature"] == before
    write_image(inbox / "review/new.jpg", MUDDY, 10)
    assert client.get("/api/signature").json()["signature"] != before


# -- moving ---------------------------------------------------------------------------------------

def test_a_label_moves_journals_is_a_correction_and_undoes(served, inbox: Path) -> None:
    client, access, _, host = served
    muddy = by_name(client.get("/api/state").json(), "muddy1.jpg")
    r = post(client, access, "/api/label", {"ids": [muddy["id"]], "label": "sapatos"}).json()
    assert r["results"] == [{"id": muddy["id"], "name": "muddy1.jpg", "moved_to": "sapatos", "problem": ""}]
    assert (inbox / "sapatos/muddy1.jpg").exists() and not (inbox / "review/muddy1.jpg").exists()
    with Journal.open(readonly=True) as journal:
        row = journal.recent(1)[0]
    assert (row.action, row.state, row.destination) == ("sort", "done", inbox / "sapatos/muddy1.jpg")
    assert row.details.label == "sapatos" and row.details.model_version == corrections.HUMAN
    assert "review page" in row.details.reason
    found = corrections.scan([inbox], CLASSES)
    assert [(c.path.name, c.old_label, c.new_label, c.guess) for c in found.corrections] == [
        ("muddy1.jpg", "review", "sapatos", "tsinelas")]
    assert host.names() == ["correction_seen"]
    assert "muddy1.jpg" in invoke("log").output
    state = client.get("/api/state").json()
    assert [p["name"] for p in state["review"]] == ["muddy2.jpg"] and state["can_undo"]

    back = post(client, access, "/api/undo").json()["results"]
    assert [(b["name"], b["moved_to"]) for b in back] == [("muddy1.jpg", "review")]
    assert (inbox / "review/muddy1.jpg").exists() and not (inbox / "sapatos/muddy1.jpg").exists()
    assert corrections.scan([inbox], CLASSES).corrections == ()
    assert post(client, access, "/api/undo").json()["results"] == []  # nothing more


def test_footsort_undo_puts_back_a_move_made_on_the_page(served, inbox: Path) -> None:
    client, access, _, _ = served
    muddy = by_name(client.get("/api/state").json(), "muddy2.jpg")
    post(client, access, "/api/label", {"ids": [muddy["id"]], "label": "tsinelas"})
    assert (inbox / "tsinelas/muddy2.jpg").exists()
    result = invoke("undo", "--last", "1")
    assert result.exit_code == 0, result.output
    assert (inbox / "review/muddy2.jpg").exists()


def test_many_at_once_and_fixing_a_recent_sort(served, inbox: Path) -> None:
    client, access, _, _ = served
    state = client.get("/api/state").json()
    ids = [p["id"] for p in state["review"]]
    red = by_name(state, "red.jpg", "recent")
    out = post(client, access, "/api/label", {"ids": ids, "label": "tsinelas"}).json()["results"]
    assert [r["moved_to"] for r in out] == ["tsinelas", "tsinelas"]
    assert not list((inbox / "review").glob("*.jpg"))
    post(client, access, "/api/label", {"ids": [red["id"]], "label": "sapatos"})
    assert (inbox / "sapatos/red.jpg").exists()
    pairs = corrections.scan([inbox], CLASSES).pairs()
    assert pairs == {("review", "tsinelas"): 2, ("tsinelas", "sapatos"): 1}
    post(client, access, "/api/undo")  # the last step only: red goes back
    assert (inbox / "tsinelas/red.jpg").exists() and (inbox / "tsinelas/muddy1.jpg").exists()
    post(client, access, "/api/undo")  # then both muddy photos, in one step
    assert sorted(p.name for p in (inbox / "review").glob("*.jpg")) == ["muddy1.jpg", "muddy2.jpg"]


def test_a_name_clash_takes_a_free_name(served, inbox: Path) -> None:
    client, access, _, _ = served
    write_image(inbox / "sapatos/muddy1.jpg", BLUE, 11)
    muddy = by_name(client.get("/api/state").json(), "muddy1.jpg")
    post(client, access, "/api/label", {"ids": [muddy["id"]], "label": "sapatos"})
    assert (inbox / "sapatos/muddy1 (1).jpg").exists() and (inbox / "sapatos/muddy1.jpg").exists()


def test_only_listed_photos_and_known_classes(served, inbox: Path) -> None:
    client, access, _, _ = served
    muddy = by_name(client.get("/api/state").json(), "muddy1.jpg")
    assert post(client, access, "/api/label", {"ids": [muddy["id"]], "label": "../../x"}).status_code == 400
    assert post(client, access, "/api/label", {"ids": "x", "label": "sapatos"}).status_code == 400
    out = post(client, access, "/api/label", {"ids": ["../../etc/passwd"], "label": "sapatos"}).json()["results"]
    assert out[0]["problem"] and not out[0]["moved_to"]
    assert client.get("/thumb/..%2F..%2Fetc%2Fpasswd").status_code == 404
    assert client.get("/photo/nope").status_code == 404
    (inbox / "review/muddy1.jpg").rename(inbox / "gone.jpg")  # moved away behind the page's back
    out = post(client, access, "/api/label", {"ids": [muddy["id"]], "label": "sapatos"}).json()["results"]
    assert out[0]["problem"] and (inbox / "gone.jpg").exists()


# -- thumbnails -----------------------------------------------------------------------------------

def _rotated_jpeg(path: Path) -> None:
    """A 96x64 JPEG whose EXIF says: rotate 90 degrees to show it (shown 64 wide, 96 high)."""
    im = Image.new("RGB", (96, 64), MUDDY)
    exif = Image.Exif()
    exif[0x0112] = 6
    im.save(path, "JPEG", exif=exif)


def test_thumbnails_are_upright_cached_by_content_and_never_break(served, inbox: Path) -> None:
    client, _, _, _ = served
    _rotated_jpeg(inbox / "review/turned.jpg")
    (inbox / "review/broken.jpg").write_bytes(b"not a photo at all")
    state = client.get("/api/state").json()
    turned, broken = by_name(state, "turned.jpg"), by_name(state, "broken.jpg")
    r = client.get(f"/thumb/{turned['id']}?v={turned['v']}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert "immutable" in r.headers["cache-control"]
    assert Image.open(io.BytesIO(r.content)).size == (64, 96)
    assert len(list(thumbs_dir().rglob("*.jpg"))) >= 1
    bad = client.get(f"/thumb/{broken['id']}")
    assert bad.status_code == 200 and bad.headers["content-type"].startswith("image/svg+xml")
    assert client.get(f"/photo/{broken['id']}").headers["content-type"].startswith("image/svg+xml")
    large = client.get(f"/photo/{turned['id']}")
    assert large.status_code == 200 and Image.open(io.BytesIO(large.content)).size == (64, 96)


# -- learning -------------------------------------------------------------------------------------

def test_learning_panel_counts_corrections_and_lists_versions(served, inbox: Path) -> None:
    client, access, _, _ = served
    (inbox / "tsinelas/red.jpg").rename(inbox / "sapatos/red.jpg")  # a correction by hand
    learning = client.get("/api/learning").json()
    assert learning["corrections"] == 1 and learning["pairs"] == [{"from": "tsinelas", "to": "sapatos", "n": 1}]
    assert learning["current"] == "default"
    r = post(client, access, "/api/models/rollback")
    assert r.status_code == 409 and "nothing to roll back" in r.json()["error"]


GATE_PER_CLASS = {"sapatos": {"n": 18, "val_accuracy": 0.9444, "parent_val_accuracy": 0.8333},
                  "tsinelas": {"n": 14, "val_accuracy": 0.9286, "parent_val_accuracy": 0.9286}}


def remember_a_gate(promoted: bool = False):
    """What `footsort retrain` leaves after its gate: a candidate measured against the model in use, per class."""
    from types import SimpleNamespace

    from footsort.learning.retrain import Verdict, remember_gate
    from footsort.model.checkpoint import ModelVersion

    metrics = {"val_accuracy": 0.9375, "parent_val_accuracy": 0.875, "validation_n": 32, "fixed": 3, "broke": 1,
               "p_value": 0.3125, "per_class": GATE_PER_CLASS}
    reason = ("not promoted: the gain is not yet significant (candidate 0.9375 vs current 0.8750 on 32 held-out "
              "photos: fixed 3, broke 1, McNemar p=0.312)")
    meta = ModelVersion("20260101-120000-abcdef", CLASSES, {}, {}, metrics={**metrics, "promoted": promoted,
                                                                                "reason": reason},
                        parent="default", created="2026-01-01T12:00:00+00:00")
    remember_gate(SimpleNamespace(meta=meta, parent="default", path=None, verdict=Verdict(promoted, reason)))
    return meta


def test_learning_panel_shows_the_gate_per_class_with_its_sample_size(served, monkeypatch: pytest.MonkeyPatch) -> None:
    from footsort.model import registry

    client, _, _, _ = served
    assert client.get("/api/learning").json()["gate"] is None  # no retrain yet
    meta = remember_a_gate()
    monkeypatch.setattr(registry, "list_versions", lambda: [(Path("kept.safetensors"), meta)])
    learning = client.get("/api/learning").json()
    gate = learning["gate"]
    assert (gate["promoted"], gate["stored"], gate["version"]) == (False, False, meta.version)
    assert gate["parent"] == "default"
    assert (gate["validation_n"], gate["parent_val_accuracy"], gate["val_accuracy"]) == (32, 0.875, 0.9375)
    assert gate["per_class"] == [{"class": "sapatos", "n": 18, "before": 0.8333, "after": 0.9444},
                                 {"class": "tsinelas", "n": 14, "before": 0.9286, "after": 0.9286}]
    assert "not yet significant" in gate["reason"] and gate["fixed"] == 3 and gate["broke"] == 1
    shipped, kept = learning["versions"]
    assert (kept["accuracy"], kept["parent_accuracy"], kept["validation_n"]) == (0.9375, 0.875, 32)
    assert kept["per_class"] == gate["per_class"]
    assert shipped["version"] == "default" and shipped["per_class"] == [] and isinstance(shipped["validation_n"], int)
    # the keys the page had before stay as they were
    assert {"corrections", "pairs", "examples", "versions", "current"} <= set(learning)
    assert {"version", "created", "parent", "accuracy", "in_use"} <= set(kept)


# -- the command ----------------------------------------------------------------------------------

def test_help_stays_light() -> None:
    code = ("import sys, footsort.cli; footsort.cli.main(['ui', '--help'], standalone_mode=False); "
            "assert 'starlette' not in sys.modules and 'torch' not in sys.modules, 'heavy import'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Example" in done.stdout and "--host" in done.stdout


def test_ui_needs_an_existing_inbox(tmp_path: Path, fake_cli: dict) -> None:
    result = invoke("ui", tmp_path / "nowhere")
    assert result.exit_code != 0 and "not a folder" in result.output


def test_thumbnail_packs_hold_every_made_thumbnail_in_one_response(served, inbox: Path) -> None:
    import json

    client, _, service, _ = served
    (inbox / "review/broken.jpg").write_bytes(b"\xff\xd8 truncated")
    state = client.get("/api/state").json()
    for p in state["review"]:
        client.get(f"/thumb/{p['id']}")  # made (or found undecodable) once
    ids = [p["id"] for p in state["review"]]
    versioned = ",".join(f"{p['id']}.{p['v']}" for p in state["review"])
    r = client.get("/api/thumbs", params={"ids": versioned})
    assert "immutable" in r.headers["cache-control"]  # every content named and there: the browser may keep it
    loose = client.get("/api/thumbs", params={"ids": ",".join([*ids, "unknown"])})
    assert loose.headers["cache-control"] == "no-store" and loose.content == r.content
    body = r.content
    n = int.from_bytes(body[:4], "big")
    index = json.loads(body[4:4 + n])
    assert [e["id"] for e in index] == ids and 4 + n + sum(e["len"] for e in index) == len(body)
    assert [e.get("bad", False) for e in index] == [p["name"] == "broken.jpg" for p in state["review"]]
    off = 4 + n
    for e in index:
        if e["len"]:
            assert Image.open(io.BytesIO(body[off:off + e["len"]])).format == "JPEG"
        off += e["len"]


def test_ui_prints_a_token_url_and_warns_off_loopback(inbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from footsort.ui import runtime
    from footsort.ui.serving import Page

    served: list[tuple[str, list]] = []
    monkeypatch.setattr(Page, "serve", lambda self: served.append((self.host, runtime.running())))
    local = invoke("ui", inbox, "--port", "0")
    assert local.exit_code == 0, local.output
    assert "token=" in local.output and "http://127.0.0.1:" in local.output and "warning" not in local.output
    host, pages = served[-1]
    assert host == "127.0.0.1" and [p.url for p in pages] == [local.output.split("open ")[1].split()[0]]
    assert pages[0].kind == "ui" and runtime.running() == []  # the runtime file lives while the page serves
    wide = invoke("ui", inbox, "--host", "0.0.0.0", "--port", "0")
    assert wide.exit_code == 0 and "warning: listening on 0.0.0.0" in wide.output
    assert served[-1][0] == "0.0.0.0"


def test_a_heic_photo_gets_a_thumbnail(served, inbox: Path) -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    client, _, _, _ = served
    Image.new("RGB", (96, 64), MUDDY).save(inbox / "review/phone.heic", "HEIF")
    phone = by_name(client.get("/api/state").json(), "phone.heic")
    r = client.get(f"/thumb/{phone['id']}")
    assert r.headers["content-type"] == "image/jpeg" and Image.open(io.BytesIO(r.content)).size == (96, 64)


def test_a_photo_put_back_under_another_name_keeps_its_prediction(served, inbox: Path) -> None:
    client, _, _, _ = served
    (inbox / "review/muddy1.jpg").rename(inbox / "review/renamed.jpg")
    renamed = by_name(client.get("/api/state").json(), "renamed.jpg")
    assert renamed["label"] == "tsinelas" and 0.5 < renamed["confidence"] < 0.8  # found by content


def test_retrain_runs_the_command_once_at_a_time_and_shows_its_lines(inbox: Path) -> None:
    import time

    script = "import time; print('epoch 1: train loss 0.5', flush=True); time.sleep(0.5); print('model x is now in use')"
    service = ReviewService.open(Library((inbox,), CLASSES), RecordingHost(),
                                 retrain_command=[sys.executable, "-c", script])
    access = Access.for_address("127.0.0.1", 8765)
    client = TestClient(create_app(service, access), base_url=BASE)
    try:
        client.get(f"/?token={access.token}")
        assert client.post("/api/retrain/start").status_code == 403  # a POST like any other: CSRF checked
        assert post(client, access, "/api/retrain/start").status_code == 202
        assert post(client, access, "/api/retrain/start").status_code == 409  # one at a time
        deadline = time.monotonic() + 30
        while client.get("/api/retrain").json()["running"] and time.monotonic() < deadline:
            time.sleep(0.05)
        status = client.get("/api/retrain").json()
        assert status["exit_code"] == 0 and status["lines"] == ["epoch 1: train loss 0.5", "model x is now in use"]
    finally:
        client.close()
        service.close()
    default = ReviewService.open(Library((inbox,), CLASSES), RecordingHost())
    default.close()
    assert default.retrain_command[1:] == ["-m", "footsort.cli", "retrain", str(inbox)]  # the command itself
