"""How long the review page takes to open with 500 photos in review/, once their thumbnails exist.

Builds a throwaway library (FOOTSORT_HOME in a temp folder): N photos moved into review/ through the
sorter, so the journal holds their predictions like after `footsort sort`, plus older journal rows.
Serves the page with uvicorn on loopback, makes every thumbnail once, then times "opening the page"
as the page does it: the HTML, the script and style, /api/state, and every thumbnail, over up to 6
connections (a browser's per-host limit), thumbnails in packs of 200 as the page fetches them. With --browser it also times headless Chromium from
navigation to the last thumbnail decoded (needs chromium, chromium-driver and selenium).

    python bench/bench_ui.py [--photos 500] [--runs 5] [--browser]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def make_library(root: Path, n: int, history: int) -> Path:
    """An inbox whose review/ holds n photos moved there by the sorter (journaled with predictions)."""
    from PIL import Image, ImageDraw

    from footsort.journal import Details, Journal
    from footsort.sorter import Move, Sorter, file_hash

    inbox = root / "inbox"
    inbox.mkdir(parents=True)
    rng = random.Random(0)
    with Journal.open() as journal:
        sorter = Sorter(journal)
        for i in range(history):  # older rows: the journal of a library in use
            journal.note("duplicate", inbox / f"old{i}.jpg", hash=f"{i:064x}", size=1)
        for i in range(n):
            im = Image.new("RGB", (1024, 768), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
            d = ImageDraw.Draw(im)
            for _ in range(12):
                x, y = rng.randrange(1024), rng.randrange(768)
                d.ellipse((x, y, x + rng.randrange(40, 300), y + rng.randrange(40, 200)),
                          fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)))
            path = inbox / f"IMG_{i:04d}.jpg"
            im.save(path, "JPEG", quality=85)
            p = rng.uniform(0.5, 0.8)
            details = Details("tsinelas", p, {"tsinelas": p, "sapatos": 1 - p}, "bench-1",
                              f"confidence {p:.2f} is below the threshold 0.80")
            sorter.move(Move(path, inbox / "review", "review", file_hash(path), path.stat().st_size, details))
    return inbox


def serve(inbox: Path):
    """uvicorn serving the page for `inbox` in a thread: (server, service, access, base URL)."""
    import uvicorn

    from footsort.commands.ui_cmds import free_port
    from footsort.ui.library import Library
    from footsort.ui.server import Access, create_app
    from footsort.ui.service import ReviewService

    class NoPlugins:
        def emit(self, event: object) -> None:
            pass

    port = free_port("127.0.0.1", 0)
    service = ReviewService.open(Library((inbox,), ("sapatos", "tsinelas")), NoPlugins())
    access = Access.for_address("127.0.0.1", port)
    server = uvicorn.Server(uvicorn.Config(create_app(service, access), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return server, service, access, f"http://127.0.0.1:{port}"


def open_page(base: str, token: str, connections: int = 6, pack: int = 200) -> tuple[float, float, int]:
    """As the page does it: HTML, JS, CSS, /api/state, then the thumbnail packs (/api/thumbs) in parallel.

    Returns seconds to the listing, seconds to the last thumbnail, thumbnails received.
    """
    import json

    import httpx

    clients = [httpx.Client(base_url=base) for _ in range(connections)]
    try:
        t0 = time.perf_counter()
        clients[0].get(f"/?token={token}", follow_redirects=True).raise_for_status()
        for c in clients[1:]:
            c.cookies = clients[0].cookies
        clients[1].get("/static/app.js").raise_for_status()
        clients[2].get("/static/app.css").raise_for_status()
        state = clients[0].get("/api/state").json()
        t_state = time.perf_counter() - t0
        ids = [p["id"] for p in state["review"]]
        packs = [ids[i:i + pack] for i in range(0, len(ids), pack)]

        def fetch(i: int) -> int:
            body = clients[i % connections].get("/api/thumbs", params={"ids": ",".join(packs[i])}).content
            n = int.from_bytes(body[:4], "big")
            index = json.loads(body[4:4 + n])
            assert 4 + n + sum(e["len"] for e in index) == len(body)
            return sum(e["len"] > 0 for e in index)

        with ThreadPoolExecutor(connections) as pool:
            loaded = sum(pool.map(fetch, range(len(packs))))
        return t_state, time.perf_counter() - t0, loaded
    finally:
        for c in clients:
            c.close()


def make_thumbnails(base: str, token: str) -> int:
    """First visit: ask for every thumbnail once (/thumb/{id} makes it); how many were made."""
    import httpx

    with httpx.Client(base_url=base) as c:
        c.get(f"/?token={token}", follow_redirects=True).raise_for_status()
        photos = c.get("/api/state").json()["review"]
        return sum(c.get(f"/thumb/{p['id']}", timeout=60).headers["content-type"] == "image/jpeg" for p in photos)


def browser_open(url: str, n: int) -> tuple[float, float]:
    """Headless Chromium, no browser cache: seconds from navigation until all n cards are drawn and every
    thumbnail on the first screen is shown; and until all n are shown after scrolling through."""
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1600,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    shown = "i => i.complete && i.naturalWidth > 0"
    first_screen = ("const imgs=[...document.querySelectorAll('#grid-review img')];"
                    "const vis=imgs.filter(i=>i.getBoundingClientRect().top<innerHeight);"
                    f"return imgs.length>={n} && vis.length>0 && vis.every({shown})")
    everything = ("const imgs=[...document.querySelectorAll('#grid-review img')];"
                  "const miss=imgs.find(i=>!(i.complete && i.naturalWidth>0));"
                  "if (miss) { miss.scrollIntoView(); return false; } return imgs.length>=" + str(n))

    def until(script: str, t0: float) -> float:
        while not driver.execute_script(script):
            if time.perf_counter() - t0 > 120:
                raise SystemExit("headless Chromium: the thumbnails did not show within 120 s")
            time.sleep(0.01)
        return time.perf_counter() - t0

    try:
        driver.get(url)  # sets the cookie; the timed visits below start from a plain navigation
        driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
        t0 = time.perf_counter()
        driver.get(url.split("?")[0])
        return until(first_screen, t0), until(everything, t0)
    finally:
        driver.quit()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=500)
    ap.add_argument("--history", type=int, default=5000, help="older journal rows")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--browser", action="store_true", help="also time headless Chromium")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="footsort-bench-ui-") as tmp:
        os.environ["FOOTSORT_HOME"] = str(Path(tmp) / "home")
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        t = time.perf_counter()
        inbox = make_library(Path(tmp), args.photos, args.history)
        print(f"library: {args.photos} photos (1024x768 JPEG) in review/, {args.history} older journal rows "
              f"({time.perf_counter() - t:.1f} s to build)")
        server, service, access, base = serve(inbox)
        try:
            t = time.perf_counter()
            loaded = make_thumbnails(base, access.token)
            print(f"first visit (makes {loaded} thumbnails): {time.perf_counter() - t:.2f} s")
            states, totals = [], []
            for _ in range(args.runs):
                s, total, loaded = open_page(base, access.token)
                assert loaded == args.photos, loaded
                states.append(s)
                totals.append(total)
            print(f"open the page, thumbnails cached (HTTP client, median of {args.runs}): page + listing "
                  f"{statistics.median(states):.3f} s, with all {args.photos} thumbnails {statistics.median(totals):.3f} s "
                  f"(min {min(totals):.3f}, max {max(totals):.3f})")
            if args.browser:
                port = int(base.rsplit(":", 1)[1])
                runs = [browser_open(access.url("127.0.0.1", port), args.photos) for _ in range(min(args.runs, 3))]
                first = statistics.median(r[0] for r in runs)
                full = statistics.median(r[1] for r in runs)
                print(f"headless Chromium, no browser cache (median of {len(runs)}): all {args.photos} cards drawn and "
                      f"the first screen of thumbnails shown {first:.3f} s; every thumbnail shown, scrolling "
                      f"through {full:.3f} s (runs: {', '.join(f'{a:.2f}/{b:.2f}' for a, b in runs)})")
            print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        finally:
            server.should_exit = True
            time.sleep(0.3)
            service.close()


if __name__ == "__main__":
    main()
