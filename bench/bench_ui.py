"""How long the review page takes to open with 500 photos in review/, once their thumbnails exist.

Builds a throwaway library (FOOTSORT_HOME in a temp folder): N photos moved into review/ through the
sorter, so the journal holds their predictions like after `footsort sort`, plus older journal rows.
Serves the page with uvicorn on loopback (as `footsort watch --ui` does), makes every thumbnail once, then
times opening the page twice:
- server: as the page does it, over HTTP: the HTML, the script and style, /api/state, and every thumbnail
  in packs of 200, over up to 6 connections (a browser's per-host limit);
- browser: headless Chromium with its cache off (Selenium + Debian's chromium and chromium-driver; skipped
  when missing), timed by the page's own performance marks from navigation start: all N cards in the DOM,
  the first screen of thumbnails shown, and every thumbnail shown after scrolling through.

    python bench/bench_ui.py [--photos 500] [--runs 5] [--browser-runs 3] [--browser]
    python bench/bench_ui.py --screenshot docs/ui-review.png
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def draw_footwear(rng: random.Random, kind: str, size: tuple[int, int] = (1024, 768)):
    """A synthetic side view of a closed shoe ("sapatos") or a sandal ("tsinelas") on a plain floor."""
    from PIL import Image, ImageDraw

    w, h = size
    floor = tuple(rng.randrange(170, 240) for _ in range(3))
    im = Image.new("RGB", size, floor)
    d = ImageDraw.Draw(im)
    colour = tuple(rng.randrange(20, 200) for _ in range(3))
    x0, x1 = int(w * rng.uniform(0.12, 0.22)), int(w * rng.uniform(0.78, 0.88))
    base = int(h * rng.uniform(0.62, 0.72))
    d.rounded_rectangle((x0, base, x1, base + h // 14), radius=h // 30, fill=(45, 40, 38))  # sole
    if kind == "sapatos":
        top = int(h * rng.uniform(0.28, 0.4))
        d.polygon([(x0, base), (x0, top), (x0 + (x1 - x0) // 3, top), ((x0 + x1) // 2, base - h // 6),
                   (x1 - h // 10, base - h // 7), (x1, base)], fill=colour)
        d.ellipse((x1 - h // 4, base - h // 6, x1 + h // 30, base + h // 40), fill=colour)  # toe
        for k in range(4):  # laces
            lx = x0 + (x1 - x0) // 3 + k * (x1 - x0) // 14
            d.line((lx, top + k * h // 22 + h // 20, lx + h // 14, top + k * h // 22 + h // 14), fill=(240, 240, 235),
                   width=max(2, h // 120))
    else:
        for k in range(rng.choice((1, 2, 3))):  # straps over a bare sole
            cx = x0 + (k + 1) * (x1 - x0) // 4 + rng.randrange(-20, 20)
            d.arc((cx - h // 7, base - h // 6, cx + h // 7, base + h // 10), 180, 360, fill=colour, width=h // 28)
    return im


def make_library(root: Path, n: int, history: int, sorted_too: int = 0) -> Path:
    """An inbox whose review/ holds n photos moved there by the sorter (journaled with predictions),
    and `sorted_too` more sorted into the class folders."""
    from footsort.sorting.journal import Details, Journal
    from footsort.sorting.sorter import Move, Sorter, file_hash

    inbox = root / "inbox"
    inbox.mkdir(parents=True)
    rng = random.Random(0)
    with Journal.open() as journal:
        sorter = Sorter(journal)
        for i in range(history):  # older rows: the journal of a library in use
            journal.note("duplicate", inbox / f"old{i}.jpg", hash=f"{i:064x}", size=1)
        for i in range(n + sorted_too):
            kind = rng.choice(("sapatos", "tsinelas"))
            path = inbox / f"IMG_{i:04d}.jpg"
            draw_footwear(rng, kind).save(path, "JPEG", quality=85)
            review = i < n
            p = rng.uniform(0.5, 0.8) if review else rng.uniform(0.8, 1.0)
            guess = kind if rng.random() < 0.8 else ("sapatos" if kind == "tsinelas" else "tsinelas")
            other = "sapatos" if guess == "tsinelas" else "tsinelas"
            details = Details(guess, p, {guess: p, other: 1 - p}, "bench-1",
                              f"confidence {p:.2f} is below the threshold 0.80" if review else "")
            sorter.move(Move(path, inbox / ("review" if review else guess), "review" if review else "sort",
                             file_hash(path), path.stat().st_size, details))
    return inbox


@contextmanager
def serve(inbox: Path) -> Iterator:
    """The page for `inbox` served on a thread, as `footsort watch --ui` serves it (footsort.ui.serving.Page)."""
    from footsort.ui.library import Library
    from footsort.ui.serving import Page

    class NoPlugins:
        def emit(self, event: object) -> None:
            pass

    page = Page.open(Library((inbox,), ("sapatos", "tsinelas")), NoPlugins(), "127.0.0.1", 0)
    try:
        with page.in_background():
            yield page
    finally:
        page.close()


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
        ids = [f"{p['id']}.{p['v']}" for p in state["review"]]
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


def chromium():
    """Headless Chromium through Selenium (Debian's chromium + chromium-driver), or None when either is missing."""
    import shutil

    binary, driver = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return None
    if not (binary and driver):
        return None

    def start(*args: str):
        options = Options()
        options.binary_location = binary
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", *args):
            options.add_argument(arg)
        return webdriver.Chrome(service=Service(driver), options=options)

    return start


# The page's own marks (footsort/ui/static/app.js), read with the Performance API: every time counts from the
# navigation's start (performance.timeOrigin), measured inside the browser, with no polling or WebDriver delay in it.
MARKS = """
const first = (name) => { const e = performance.getEntriesByName(name)[0]; return e ? e.startTime : null; };
const nav = performance.getEntriesByType('navigation')[0];
return {html: nav ? nav.responseEnd : null, listing: first('footsort:state'), drawn: first('footsort:drawn'),
        packs: first('footsort:thumbs'), first_screen: first('footsort:first-screen'),
        cards: document.querySelectorAll('#grid-review .card').length};
"""
EVERYTHING = """
const imgs = [...document.querySelectorAll('#grid-review img')];
const miss = imgs.find(i => !(i.complete && i.naturalWidth > 0));
if (miss) { miss.scrollIntoView(); return null; }
return imgs.length >= arguments[0] ? performance.now() : null;
"""


def browser_open(start, url: str, n: int) -> dict:
    """One visit in a fresh headless Chromium with its cache off; the page's marks in seconds from navigation start:
    html, listing (/api/state read), drawn (all n cards in the DOM), first_screen (every thumbnail of the first
    screen shown), and everything (every thumbnail shown, scrolling through)."""
    driver = start("--window-size=1600,1000")
    try:
        driver.get(url)  # trades the token for the cookie; the timed visit below is a plain navigation
        driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
        driver.get(url.split("?")[0])
        deadline = time.monotonic() + 120
        while (marks := driver.execute_script(MARKS))["first_screen"] is None:
            if time.monotonic() > deadline:
                raise SystemExit(f"headless Chromium: the first screen of thumbnails did not show in 120 s: {marks}")
            time.sleep(0.05)
        if marks["cards"] < n:
            raise SystemExit(f"headless Chromium: only {marks['cards']} of {n} cards drawn")
        while (done := driver.execute_script(EVERYTHING, n)) is None:
            if time.monotonic() > deadline:
                raise SystemExit("headless Chromium: not every thumbnail showed in 120 s")
            time.sleep(0.01)
        out = {k: v / 1000 for k, v in marks.items() if k != "cards" and v is not None}
        out["everything"] = done / 1000
        return out
    finally:
        driver.quit()


def screenshot(path: Path) -> None:
    """A picture of the page (docs/ui-review.png): 14 synthetic photos in review/, 12 sorted."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    start = chromium()
    if start is None:
        raise SystemExit("--screenshot needs selenium, chromium and chromium-driver")
    with tempfile.TemporaryDirectory(prefix="footsort-shot-") as tmp:
        os.environ["FOOTSORT_HOME"] = str(Path(tmp) / "home")
        inbox = make_library(Path(tmp), 14, 0, sorted_too=12)
        with serve(inbox) as page:
            driver = start("--window-size=1100,620", "--force-device-scale-factor=1", "--hide-scrollbars")
            try:
                driver.get(page.url)
                done = ("return [...document.querySelectorAll('#grid-review img')]"
                        ".every(i => i.complete && i.naturalWidth > 0)")
                deadline = time.monotonic() + 60
                while not driver.execute_script(done) and time.monotonic() < deadline:
                    time.sleep(0.1)
                cards = driver.find_elements("css selector", "#grid-review .card")
                ActionChains(driver).send_keys(Keys.ARROW_RIGHT).perform()
                ActionChains(driver).key_down(Keys.CONTROL).click(cards[3]).click(cards[4]).key_up(Keys.CONTROL).perform()
                time.sleep(0.3)
                driver.save_screenshot(str(path))
            finally:
                driver.quit()
    print(f"wrote {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=500)
    ap.add_argument("--history", type=int, default=5000, help="older journal rows")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--browser-runs", type=int, default=3, help="visits in headless Chromium (0: none)")
    ap.add_argument("--browser", action="store_true", help="fail when headless Chromium cannot run (default: skip it)")
    ap.add_argument("--screenshot", type=Path, help="only write a screenshot of the page to this PNG")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    if args.screenshot:
        screenshot(args.screenshot.resolve())
        return
    start = chromium() if args.browser_runs else None
    if args.browser and start is None:
        raise SystemExit("--browser needs selenium, chromium and chromium-driver")
    with tempfile.TemporaryDirectory(prefix="footsort-bench-ui-") as tmp:
        os.environ["FOOTSORT_HOME"] = str(Path(tmp) / "home")
        t = time.perf_counter()
        inbox = make_library(Path(tmp), args.photos, args.history)
        print(f"library: {args.photos} photos (1024x768 JPEG) in review/, {args.history} older journal rows "
              f"({time.perf_counter() - t:.1f} s to build)")
        with serve(inbox) as page:
            token = page.access.token
            t = time.perf_counter()
            loaded = make_thumbnails(page.address, token)
            print(f"first visit (makes {loaded} thumbnails): {time.perf_counter() - t:.2f} s")
            states, totals = [], []
            for _ in range(args.runs):
                s, total, loaded = open_page(page.address, token)
                assert loaded == args.photos, loaded
                states.append(s)
                totals.append(total)
            print(f"server, HTTP client (median of {args.runs}): page + listing {statistics.median(states):.3f} s, "
                  f"with all {args.photos} thumbnails {statistics.median(totals):.3f} s "
                  f"(min {min(totals):.3f}, max {max(totals):.3f})")
            visits = [browser_open(start, page.url, args.photos) for _ in range(args.browser_runs)] if start else []
            if visits:
                med = {k: statistics.median(v[k] for v in visits if k in v) for k in set().union(*visits)}
                print(f"browser, headless Chromium, cache off (median of {len(visits)}; the page's performance marks, "
                      f"from navigation start): HTML {med['html']:.3f} s, listing read {med['listing']:.3f} s, "
                      f"all {args.photos} cards in the DOM {med['drawn']:.3f} s, first screen of thumbnails shown "
                      f"{med['first_screen']:.3f} s; every thumbnail shown, scrolling through "
                      f"{med['everything']:.3f} s")
                print("  runs (first screen): " + ", ".join(f"{v['first_screen']:.3f}" for v in visits))
            elif args.browser_runs:
                print("browser: skipped (needs selenium, chromium and chromium-driver)")
            browser = f", browser {med['first_screen']:.2f} s" if visits else ""
            print(f"open {args.photos} photos, thumbnails made: server {statistics.median(totals):.2f} s{browser} "
                  f"(goal: under 1 s)")
            print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
