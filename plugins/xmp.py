"""xmp: write the label into an XMP sidecar that digiKam, darktable and Lightroom read.

For a sorted photo it adds the label to `dc:subject` (keyword `tsinelas`) and to `lr:hierarchicalSubject`
(`footwear|tsinelas`; digiKam's `digiKam:TagsList` gets `footwear/tsinelas`), and records the confidence
and model version as `footsort:*` properties. An existing sidecar is updated, never replaced: everything
else in it is kept, it is written atomically (temp file + os.replace), and one that is not valid XML is
left untouched. A sidecar lying beside the photo in the inbox follows it to its class folder. When the
person corrects a label, the old label is removed and the new one added.

    [plugins]
    enabled = ["xmp"]
    [plugins.xmp]
    sidecar = "photo.xmp"   # Lightroom / Capture One style; default photo.jpg.xmp (darktable, digiKam)
"""

from __future__ import annotations

import glob
import os
import re
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from footsort.plugins.events import CorrectionSeen, FileSorted
from footsort.plugins.host import PluginAPI
from footsort.system import atomic


@dataclass(frozen=True)
class Settings:
    """[plugins.xmp]"""

    sidecar: Literal["photo.jpg.xmp", "photo.xmp"] = "photo.jpg.xmp"  # photo.jpg.xmp: darktable, digiKam; photo.xmp: Lightroom
    parent: str = "footwear"  # top of the keyword hierarchy: footwear|tsinelas


NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "lr": "http://ns.adobe.com/lightroom/1.0/",
    "digiKam": "http://www.digikam.org/ns/1.0/",
    "footsort": "http://ns.footsort.org/1.0/",
}
_lock = threading.Lock()  # ElementTree's prefix registry is global


def _q(prefix: str, local: str) -> str:
    return f"{{{NS[prefix]}}}{local}"


def sidecar_path(photo: Path, style: str = "photo.jpg.xmp") -> Path:
    """Where the sidecar of `photo` lives: photo.jpg.xmp (appended) or photo.xmp (extension replaced)."""
    return photo.with_name(photo.name + ".xmp") if style == "photo.jpg.xmp" else photo.with_suffix(".xmp")


def _namespaces(data: bytes) -> list[tuple[str, str]]:
    parser = ET.XMLPullParser(events=("start-ns",))
    parser.feed(data)
    parser.close()
    return [ns for _event, ns in parser.read_events()]  # type: ignore[misc]


def _parse(data: bytes) -> tuple[ET.Element, list[tuple[str, str]]]:
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True, insert_pis=True))
    parser.feed(data)
    return parser.close(), _namespaces(data)


def _new_document() -> ET.Element:
    meta = ET.Element(_q("x", "xmpmeta"), {_q("x", "xmptk"): "footsort"})
    rdf = ET.SubElement(meta, _q("rdf", "RDF"))
    ET.SubElement(rdf, _q("rdf", "Description"), {_q("rdf", "about"): ""})
    return meta


def _description(root: ET.Element) -> ET.Element:
    rdf = root if root.tag == _q("rdf", "RDF") else root.find(f".//{_q('rdf', 'RDF')}")
    if rdf is None:
        raise ValueError("no rdf:RDF element; not an XMP packet")
    descriptions = rdf.findall(_q("rdf", "Description"))
    for d in descriptions:  # prefer the one that already holds keywords
        if d.find(_q("dc", "subject")) is not None or d.find(_q("lr", "hierarchicalSubject")) is not None:
            return d
    if descriptions:
        return descriptions[0]
    return ET.SubElement(rdf, _q("rdf", "Description"), {_q("rdf", "about"): ""})


def _items(desc: ET.Element, prefix: str, local: str) -> ET.Element:
    """The rdf:Bag (or existing Seq) of a keyword list property, created when missing."""
    prop = desc.find(_q(prefix, local))
    if prop is None:
        prop = ET.SubElement(desc, _q(prefix, local))
    for container in ("Bag", "Seq", "Alt"):
        found = prop.find(_q("rdf", container))
        if found is not None:
            return found
    return ET.SubElement(prop, _q("rdf", "Bag"))


def _set_keywords(bag: ET.Element, remove: set[str], add: str) -> None:
    for li in list(bag.findall(_q("rdf", "li"))):
        if (li.text or "") in remove:
            bag.remove(li)
    if add not in {(li.text or "") for li in bag.findall(_q("rdf", "li"))}:
        ET.SubElement(bag, _q("rdf", "li")).text = add


def update_xmp(existing: bytes | None, label: str, confidence: float | None, parent: str = "footwear",
               model_version: str = "", old_labels: tuple[str, ...] = ()) -> bytes:
    """The sidecar bytes after labelling: `existing` (None: a new sidecar) with footsort's keywords set to `label`.

    Only keywords footsort wrote before (its recorded label, and `old_labels`) are removed; everything
    else is kept. `confidence` None means a person chose the label. Raises ValueError on unparseable XML.
    """
    try:
        root, file_ns = _parse(existing) if existing else (_new_document(), [])
    except ET.ParseError as exc:
        raise ValueError(f"not valid XML ({exc})") from None
    desc = _description(root)
    previous = {desc.get(_q("footsort", "label"), ""), *old_labels} - {"", label}
    _set_keywords(_items(desc, "dc", "subject"), previous, label)
    _set_keywords(_items(desc, "lr", "hierarchicalSubject"), {f"{parent}|{p}" for p in previous}, f"{parent}|{label}")
    _set_keywords(_items(desc, "digiKam", "TagsList"), {f"{parent}/{p}" for p in previous}, f"{parent}/{label}")
    desc.set(_q("footsort", "label"), label)
    if confidence is None:
        desc.attrib.pop(_q("footsort", "confidence"), None)
        desc.set(_q("footsort", "corrected"), "True")
    else:
        desc.set(_q("footsort", "confidence"), f"{confidence:.4f}")
        desc.set(_q("footsort", "corrected"), "False")
    if model_version:
        desc.set(_q("footsort", "model"), model_version)
    if not existing:
        ET.indent(root, space=" ")
    with _lock:
        for prefix, uri in NS.items():
            ET.register_namespace(prefix, uri)
        for prefix, uri in file_ns:  # keep the file's own prefixes (ET would write ns0, ns1, ...)
            if prefix and prefix != "xml" and not re.fullmatch(r"ns\d+", prefix):
                ET.register_namespace(prefix, uri)
        body = ET.tostring(root, encoding="unicode")
    if existing and existing.lstrip().startswith(b"<?xpacket"):
        text = f'<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n{body}\n<?xpacket end="w"?>'
    else:
        text = f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'
    return text.encode("utf-8")


def label_photo(photo: Path, label: str, confidence: float | None, settings: Settings = Settings(),
                model_version: str = "", old_labels: tuple[str, ...] = (), came_from: Path | None = None) -> Path:
    """Write or update the sidecar of `photo`; a sidecar left beside `came_from` is moved along first."""
    target = sidecar_path(photo, settings.sidecar)
    if came_from is not None and not target.exists():
        old = sidecar_path(came_from, settings.sidecar)
        # photo.xmp may belong to a raw file of the same name still in the inbox: then leave it
        siblings = [p for p in old.parent.glob(f"{glob.escape(came_from.stem)}.*") if p != old] if old.is_file() else []
        if old.is_file() and not (settings.sidecar == "photo.xmp" and siblings):
            os.replace(old, target)
    existing = target.read_bytes() if target.exists() else None
    try:
        data = update_xmp(existing, label, confidence, settings.parent, model_version, old_labels)
    except ValueError as exc:
        raise ValueError(f"sidecar {target} left unchanged: {exc}") from None
    atomic.write_bytes(target, data)
    return target


def register(api: PluginAPI) -> None:
    """Tag sorted photos, and re-tag corrected ones."""
    settings = api.settings_as(Settings)

    def on_sorted(event: FileSorted) -> None:
        path = label_photo(event.destination, event.label, event.confidence, settings, event.model_version,
                           came_from=event.source)
        api.log.debug("wrote {}", path)

    def on_correction(event: CorrectionSeen) -> None:
        path = label_photo(event.path, event.new_label, None, settings, old_labels=(event.old_label,))
        api.log.debug("re-labelled {} as {}", path, event.new_label)

    api.on(FileSorted, on_sorted)  # type: ignore[arg-type]
    api.on(CorrectionSeen, on_correction)  # type: ignore[arg-type]
