"""xmp plugin: sidecars with dc:subject / lr:hierarchicalSubject, updated without losing anything, atomically."""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest
from footsort.plugins.bundled.xmp import (
    NS,
    Settings,
    label_photo,
    sidecar_path,
    update_xmp,
)

from footsort.plugins.events import CorrectionSeen, FileSorted
from footsort.plugins.host import PluginHost
from footsort.system import atomic
from footsort.system.config import Config, PluginsSection

DARKTABLE_SIDECAR = """<?xml version="1.0" encoding="UTF-8"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:darktable="http://darktable.sf.net/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmp:Rating="3"
    darktable:history_end="1">
   <!-- kept -->
   <dc:subject><rdf:Bag><rdf:li>beach</rdf:li></rdf:Bag></dc:subject>
   <darktable:history><rdf:Seq><rdf:li darktable:operation="exposure" darktable:enabled="1"/></rdf:Seq></darktable:history>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
"""


def keywords(data: bytes, prop: str) -> list[str]:
    root = ET.fromstring(data)
    return [li.text or "" for li in root.iter(f"{{{NS['rdf']}}}li") if _parent_is(root, li, prop)]


def _parent_is(root: ET.Element, li: ET.Element, prop: str) -> bool:
    prefix, local = prop.split(":")
    for el in root.iter(f"{{{NS[prefix]}}}{local}"):
        if li in list(el.iter()):
            return True
    return False


def description(data: bytes) -> ET.Element:
    found = ET.fromstring(data).find(f".//{{{NS['rdf']}}}Description")
    assert found is not None
    return found


def test_sidecar_names() -> None:
    assert sidecar_path(Path("/a/IMG_1.JPG")) == Path("/a/IMG_1.JPG.xmp")
    assert sidecar_path(Path("/a/IMG_1.JPG"), "photo.xmp") == Path("/a/IMG_1.xmp")


def test_new_sidecar_has_keywords_confidence_and_model() -> None:
    data = update_xmp(None, "tsinelas", 0.93127, model_version="v7")
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert keywords(data, "dc:subject") == ["tsinelas"]
    assert keywords(data, "lr:hierarchicalSubject") == ["footwear|tsinelas"]
    assert keywords(data, "digiKam:TagsList") == ["footwear/tsinelas"]
    desc = description(data)
    assert desc.get(f"{{{NS['footsort']}}}confidence") == "0.9313"
    assert desc.get(f"{{{NS['footsort']}}}model") == "v7"
    assert b"ns0:" not in data and b"xmlns:dc=" in data and b"xmlns:lr=" in data


def test_existing_sidecar_keeps_everything_else() -> None:
    data = update_xmp(DARKTABLE_SIDECAR.encode(), "sapatos", 0.8)
    assert keywords(data, "dc:subject") == ["beach", "sapatos"]
    assert keywords(data, "lr:hierarchicalSubject") == ["footwear|sapatos"]
    desc = description(data)
    assert desc.get("{http://ns.adobe.com/xap/1.0/}Rating") == "3"
    history = desc.find("{http://darktable.sf.net/}history")
    assert history is not None and history.find(f".//{{{NS['rdf']}}}li").get("{http://darktable.sf.net/}operation") == "exposure"  # type: ignore[union-attr]
    text = data.decode()
    assert "<!-- kept -->" in text and "xmlns:darktable=" in text and 'x:xmptk="XMP Core 4.4.0-Exiv2"' in text


def test_relabel_replaces_only_footsorts_own_keywords() -> None:
    first = update_xmp(DARKTABLE_SIDECAR.encode(), "tsinelas", 0.7)
    again = update_xmp(first, "tsinelas", 0.9)  # idempotent: no duplicates
    assert keywords(again, "dc:subject") == ["beach", "tsinelas"]
    corrected = update_xmp(again, "sapatos", None, old_labels=("tsinelas",))
    assert keywords(corrected, "dc:subject") == ["beach", "sapatos"]
    assert keywords(corrected, "lr:hierarchicalSubject") == ["footwear|sapatos"]
    desc = description(corrected)
    assert desc.get(f"{{{NS['footsort']}}}corrected") == "True"
    assert desc.get(f"{{{NS['footsort']}}}confidence") is None


def test_a_persons_own_keyword_equal_to_a_class_name_is_kept() -> None:
    mine = DARKTABLE_SIDECAR.replace("<rdf:li>beach</rdf:li>", "<rdf:li>sapatos</rdf:li>").encode()
    data = update_xmp(mine, "tsinelas", 0.9)  # footsort never wrote "sapatos" here: keep it
    assert keywords(data, "dc:subject") == ["sapatos", "tsinelas"]


def test_xpacket_wrapper_is_kept() -> None:
    wrapped = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n' + DARKTABLE_SIDECAR.split("\n", 1)[1] + '<?xpacket end="w"?>'
    data = update_xmp(wrapped.encode(), "tsinelas", 0.9)
    assert data.startswith(b"<?xpacket begin=") and data.rstrip().endswith(b'<?xpacket end="w"?>')
    assert keywords(data, "dc:subject") == ["beach", "tsinelas"]


def test_invalid_sidecar_is_left_untouched(tmp_path: Path) -> None:
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"jpeg")
    side = sidecar_path(photo)
    side.write_bytes(b"<x:xmpmeta><broken")
    with pytest.raises(ValueError, match="left unchanged"):
        label_photo(photo, "tsinelas", 0.9)
    assert side.read_bytes() == b"<x:xmpmeta><broken"
    assert set(os.listdir(tmp_path)) == {"a.jpg", "a.jpg.xmp"}


def test_write_is_atomic_and_keeps_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    photo = tmp_path / "a.jpg"
    side = sidecar_path(photo)
    side.write_text(DARKTABLE_SIDECAR)
    side.chmod(0o600)

    def crash(src: str, dst: str) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(atomic.os, "replace", crash)
    with pytest.raises(OSError):
        label_photo(photo, "tsinelas", 0.9)
    assert side.read_text() == DARKTABLE_SIDECAR and set(os.listdir(tmp_path)) == {"a.jpg.xmp"}  # no temp left
    monkeypatch.undo()
    label_photo(photo, "tsinelas", 0.9)
    assert side.stat().st_mode & 0o777 == 0o600


def test_sidecar_in_the_inbox_follows_the_photo(tmp_path: Path) -> None:
    inbox, dest = tmp_path / "inbox", tmp_path / "inbox" / "tsinelas"
    dest.mkdir(parents=True)
    (inbox / "a.jpg.xmp").write_text(DARKTABLE_SIDECAR)
    (dest / "a.jpg").write_bytes(b"jpeg")
    target = label_photo(dest / "a.jpg", "tsinelas", 0.9, came_from=inbox / "a.jpg")
    assert target == dest / "a.jpg.xmp" and not (inbox / "a.jpg.xmp").exists()
    assert keywords(target.read_bytes(), "dc:subject") == ["beach", "tsinelas"]


def test_photo_xmp_of_a_raw_file_stays_in_the_inbox(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "b.CR2").write_bytes(b"raw")
    (tmp_path / "b.xmp").write_text(DARKTABLE_SIDECAR)
    target = label_photo(tmp_path / "out" / "b.jpg", "sapatos", 0.9, Settings(sidecar="photo.xmp"), came_from=tmp_path / "b.jpg")
    assert (tmp_path / "b.xmp").read_text() == DARKTABLE_SIDECAR
    assert keywords(target.read_bytes(), "dc:subject") == ["sapatos"]


def test_plugin_through_the_host(tmp_path: Path) -> None:
    photo = tmp_path / "tsinelas" / "a.jpg"
    photo.parent.mkdir()
    photo.write_bytes(b"jpeg")
    cfg = replace(Config(), plugins=PluginsSection(enabled=("xmp",), settings={"xmp": {"sidecar": "photo.xmp"}}))
    host = PluginHost.from_config(cfg)
    assert host.running == ("xmp",)
    host.emit(FileSorted(source=tmp_path / "a.jpg", destination=photo, label="tsinelas", confidence=0.91))
    moved = tmp_path / "sapatos" / "a.jpg"
    host.emit(CorrectionSeen(path=moved, old_label="tsinelas", new_label="sapatos"))
    moved.parent.mkdir()
    host.close()
    assert keywords((tmp_path / "tsinelas" / "a.xmp").read_bytes(), "lr:hierarchicalSubject") == ["footwear|tsinelas"]
    assert keywords((tmp_path / "sapatos" / "a.xmp").read_bytes(), "dc:subject") == ["sapatos"]


@pytest.mark.skipif(shutil.which("exiv2") is None, reason="exiv2 (the XMP library digiKam and darktable use) is not installed")
def test_exiv2_reads_the_keywords_back(tmp_path: Path) -> None:
    side = tmp_path / "a.jpg.xmp"
    side.write_text(DARKTABLE_SIDECAR)
    label_photo(tmp_path / "a.jpg", "tsinelas", 0.93)
    out = subprocess.run(["exiv2", "-PXkv", str(side)], capture_output=True, text=True, check=True).stdout
    values = dict((line.split(None, 1) + [""])[:2] for line in out.splitlines() if line.strip())
    assert values["Xmp.dc.subject"].strip() == "beach, tsinelas"
    assert values["Xmp.lr.hierarchicalSubject"].strip() == "footwear|tsinelas"
    assert values["Xmp.footsort.confidence"].strip() == "0.9300"
    assert values["Xmp.xmp.Rating"].strip() == "3"
    assert values["Xmp.darktable.history[1]/darktable:operation"].strip() == "exposure"
