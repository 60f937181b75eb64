"""The review page end to end in a real headless Chromium (Debian's chromium + chromium-driver, via Selenium).

Skipped where either is missing (.ci/run installs them when it runs as root).
UI_SCREENSHOT=path.png also saves a screenshot of the page (docs/ui-review.png comes from it).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
webdriver = pytest.importorskip("selenium.webdriver")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver")

from fakes import RecordingHost, wait_for, write_image  # noqa: E402

from footsort.sorting.journal import Journal  # noqa: E402
from footsort.ui.library import Library  # noqa: E402
from tests.test_ui import CLASSES, inbox, remember_a_gate  # noqa: E402,F401 (the sorted-inbox fixture)


@pytest.fixture
def server(inbox: Path):  # noqa: F811
    """The page served on a free loopback port, on a thread (as `footsort watch --ui` serves it)."""
    from footsort.ui.serving import Page

    page = Page.open(Library((inbox,), CLASSES), RecordingHost(), "127.0.0.1", 0)
    review, _ = page.service.listing()
    for p in review:  # made ahead, so the page gets them in one pack
        page.service.thumbs.get(p.path, p.hash)
    try:
        with page.in_background():
            yield page.url
    finally:
        page.close()


@pytest.fixture
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,800"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()




def test_open_see_thumbnails_press_a_key_and_undo(server: str, browser, inbox: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(server)
    assert "token" not in browser.current_url  # the token went into a cookie
    cards = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#grid-review .card"), what="review thumbnails")
    assert [c.find_element(By.CSS_SELECTOR, ".name").text for c in cards] == ["muddy2.jpg", "muddy1.jpg"]
    wait_for(lambda: browser.execute_script(
        "return [...document.querySelectorAll('#grid-review img')].every(i => i.complete && i.naturalWidth > 0)"),
        what="thumbnails to load")
    wait_for(lambda: browser.execute_script("return performance.getEntriesByName('footsort:first-screen').length"),
             what="the first-screen mark bench/bench_ui.py times")
    sources = browser.execute_script("return [...document.querySelectorAll('#grid-review img')].map(i => i.src)")
    assert all(src.startswith("blob:") for src in sources), sources  # one pack, not a request per photo
    write_image(inbox / "review/arrived.jpg", (150, 20, 140), 21)  # a photo arrives: the page shows it by itself
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#grid-review .card")) == 3, what="the new photo")
    if os.environ.get("UI_SCREENSHOT"):
        browser.save_screenshot(os.environ["UI_SCREENSHOT"])

    def cursor() -> str:
        return browser.find_element(By.CSS_SELECTOR, "#grid-review .card.cursor .name").text

    assert cursor() == "muddy2.jpg"
    ActionChains(browser).send_keys(Keys.ARROW_RIGHT).perform()
    assert cursor() == "muddy1.jpg"
    ActionChains(browser).send_keys(Keys.SPACE).perform()  # large
    wait_for(lambda: browser.execute_script(
        "const i = document.getElementById('viewer-img'); return !document.getElementById('viewer').hidden"
        " && i.complete && i.naturalWidth > 0"), what="the large photo")
    ActionChains(browser).send_keys(Keys.ESCAPE).perform()
    assert not browser.find_element(By.ID, "viewer").is_displayed()
    ActionChains(browser).send_keys("x").perform()  # skip: muddy1 goes last, the cursor goes on
    names = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#grid-review .card .name")]
    assert names[-1] == "muddy1.jpg" and cursor() != "muddy1.jpg"
    ActionChains(browser).send_keys(Keys.ARROW_LEFT).send_keys(Keys.ARROW_LEFT).perform()

    first = cursor()
    ActionChains(browser).send_keys("1").perform()  # 1 = sapatos
    wait_for(lambda: (inbox / "sapatos" / first).exists(), what=f"{first} in sapatos/")
    assert not (inbox / "review" / first).exists()

    def last_row():
        with Journal.open(readonly=True) as journal:
            return journal.recent(1)[0]

    # the file is in place a moment before the journal marks its move done
    row = wait_for(lambda: (r := last_row()).state == "done" and r, what="the journal to mark the move done")
    assert (row.action, row.state, row.details.label, row.destination) == ("sort", "done", "sapatos",
                                                                           inbox / "sapatos" / first)
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#grid-review .card")) == 2, what="the card to go")

    ActionChains(browser).send_keys("u").perform()
    wait_for(lambda: (inbox / "review" / first).exists(), what=f"{first} back in review/")
    assert not (inbox / "sapatos" / first).exists()
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#grid-review .card")) == 3, what="the card back")

    ActionChains(browser).send_keys("a").perform()  # select all, then one key moves them all
    ActionChains(browser).send_keys("2").perform()
    wait_for(lambda: not list((inbox / "review").glob("*.jpg")), what="review/ to empty")
    assert len(list((inbox / "tsinelas").glob("*.jpg"))) == 4  # red.jpg + the three
    wait_for(lambda: browser.find_element(By.ID, "empty-review").is_displayed(), what="the empty message")

    remember_a_gate()  # a retrain whose candidate the gate turned down
    browser.find_element(By.CSS_SELECTOR, '.tab[data-tab="learning"]').click()  # the learning panel
    wait_for(lambda: "Model versions" in browser.find_element(By.ID, "panel-learning").text, what="learning panel")
    text = browser.find_element(By.ID, "panel-learning").text
    gate = browser.find_element(By.CSS_SELECTOR, "table.gate").text.splitlines()  # the verdict, per class, with its n
    assert "Latest retrain" in text and "not promoted" in text and "McNemar p=0.312" in text
    assert gate[1:] == ["sapatos 18 0.8333 0.9444 +0.1111", "tsinelas 14 0.9286 0.9286 0.0000",
                        "all classes 32 0.8750 0.9375 +0.0625"], gate
    assert "2 correction(s) (2 review → tsinelas)" in text  # arrived.jpg was never seen by the model and browser.find_element(By.ID, "retrain").is_enabled()
