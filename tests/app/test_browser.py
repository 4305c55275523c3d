"""A real browser against the app served by gunicorn: upload a dog photo, see breeds and Grad-CAM.

Needs Debian's chromium and chromium-driver (`apt-get install -y chromium chromium-driver`) and
`pip install selenium`; skipped with the reason when they are missing (tests/_browser.py, shared
with tests/book, starts it).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._browser import chromium

PROJECT = Path(__file__).resolve().parents[2]
SCREENSHOTS = PROJECT / "runs" / "screenshots"
README_SCREENSHOT = PROJECT / "docs" / "app-screenshot.png"


# A desktop with a mouse: headless Chromium otherwise reports no hover and no fine pointer, as a
# touch screen would (touch emulation still switches them).
DESKTOP_POINTER = (
    "--blink-settings=primaryPointerType=4,primaryHoverType=2,"
    "availablePointerTypes=4,availableHoverTypes=2"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian chromium through Debian's chromedriver, as a desktop with a mouse."""
    with chromium(flags=[DESKTOP_POINTER]) as driver:
        yield driver


def _api_answer(url: str, photo: Path) -> dict:
    request = urllib.request.Request(f"{url}/api/predict", data=photo.read_bytes(), method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def _upload_and_wait(driver, url: str, photo: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    driver.find_element(By.ID, "file").send_keys(str(photo))
    heatmap_shown = (
        "const img = document.getElementById('heatmap');"
        "return !document.getElementById('heatmap-figure').hidden && img.complete "
        "&& img.naturalWidth > 0;"
    )
    WebDriverWait(driver, 60).until(lambda d: d.execute_script(heatmap_shown))


# Every <img> the page displays has decoded pixels: no broken-image icon anywhere.
BROKEN_IMAGES = """return [...document.images].filter(
  (img) => img.getClientRects().length > 0 && !(img.complete && img.naturalWidth > 0)
).map((img) => img.id);"""


def _text(driver, element_id: str) -> str:
    return driver.execute_script(f"return document.getElementById('{element_id}').textContent;")


def test_upload_shows_breeds_and_heatmap(server, browser, dog_photo):
    from selenium.webdriver.common.by import By

    _upload_and_wait(browser, server, dog_photo)
    expected = _api_answer(server, dog_photo)
    names = [li.find_element(By.CLASS_NAME, "name").text for li in
             browser.find_elements(By.CSS_SELECTOR, "#breeds li")]  # fmt: skip
    assert names == [p["name"] for p in expected["predictions"]]
    verdict = browser.find_element(By.ID, "verdict").text
    assert verdict == expected["headline"] == "Looks like a Golden Retriever"
    assert browser.find_element(By.ID, "heatmap").get_attribute("src").startswith("data:image/")
    caption = browser.find_element(By.ID, "heatmap-caption").text
    assert caption == f'Where the model looked for "{expected["answer"]}"'
    assert _text(browser, "announce") == verdict  # what a screen reader announces
    assert browser.execute_script(BROKEN_IMAGES) == []
    assert expected["model"]["name"] in browser.find_element(By.TAG_NAME, "footer").text
    assert browser.find_element(By.ID, "status").text == ""  # no error shown
    problems = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert problems == []  # no script error, no Content-Security-Policy violation
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "app.png"))
    if not README_SCREENSHOT.exists() or os.environ.get("DOGGO_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(SCREENSHOTS / "app.png", README_SCREENSHOT)


def test_heatmap_names_the_answered_breed_when_not_a_dog_is_likeliest(server, browser,
                                                                      stanford_dogs):  # fmt: skip
    from selenium.webdriver.common.by import By

    photo = sorted((stanford_dogs / "n02110958-pug").glob("*.jpg"))[0]  # Pug 0.31, other 0.6
    _upload_and_wait(browser, server, photo)
    verdict = browser.find_element(By.ID, "verdict").text
    assert "Pug" in verdict
    assert browser.find_element(By.ID, "heatmap-caption").text.endswith('for "Pug"')
    assert _text(browser, "announce") == verdict


def test_nothing_broken_before_an_upload_or_after_an_error(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server)
    assert browser.execute_script(BROKEN_IMAGES) == []
    assert not browser.find_element(By.ID, "result").is_displayed()
    text = tmp_path / "notes.txt"
    text.write_text("not a photo at all")
    browser.find_element(By.ID, "file").send_keys(str(text))
    WebDriverWait(browser, 30).until(
        lambda d: "not an image" in d.find_element(By.ID, "status").text
    )
    assert browser.execute_script(BROKEN_IMAGES) == []
    assert not browser.find_element(By.ID, "result").is_displayed()
    assert "not an image" in _text(browser, "announce")  # the error is announced too


def test_not_a_dog_shows_no_breed_bars(server, browser):
    from selenium.webdriver.common.by import By

    skimage = pytest.importorskip("skimage")
    cat = Path(skimage.__file__).parent / "data" / "chelsea.png"
    _upload_and_wait(browser, server, cat)
    assert browser.find_element(By.ID, "verdict").text.startswith("That does not look like a dog")
    assert browser.find_elements(By.CSS_SELECTOR, "#breeds li") == []
    assert browser.find_element(By.ID, "heatmap-caption").text.endswith('for "not a dog"')


def _outline(driver, selector: str) -> str:
    return driver.execute_script(
        f"return getComputedStyle(document.querySelector('{selector}')).outlineStyle;"
    )


def test_keyboard_focus_reaches_only_visible_controls(server, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    browser.get(server)  # the fixture's browser is a desktop: no camera button
    focused = []
    for _ in range(6):
        ActionChains(browser).send_keys(Keys.TAB).perform()
        focused.append(browser.execute_script("return document.activeElement.id;"))
    assert "file" in focused and "camera" not in focused
    browser.get(server)
    ActionChains(browser).send_keys(Keys.TAB).perform()  # keyboard focus: :focus-visible
    assert browser.execute_script("return document.activeElement.id;") == "file"
    assert _outline(browser, "label[for=file]") == "solid"


def test_on_a_touch_screen_only_the_focused_button_is_outlined(server, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    browser.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True})
    try:
        browser.get(server)
        for _ in range(6):
            if browser.execute_script("return document.activeElement.id;") == "file":
                break
            ActionChains(browser).send_keys(Keys.TAB).perform()
        assert _outline(browser, "label[for=file]") == "solid"
        assert _outline(browser, "label[for=camera]") == "none"
        ActionChains(browser).send_keys(Keys.TAB).perform()
        assert browser.execute_script("return document.activeElement.id;") == "camera"
        assert _outline(browser, "label[for=camera]") == "solid"
        assert _outline(browser, "label[for=file]") == "none"
    finally:
        browser.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": False})


def test_page_fits_a_phone_screen(server, browser, dog_photo):
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 390, "height": 1500, "deviceScaleFactor": 1, "mobile": True},
    )
    browser.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True})
    try:
        _upload_and_wait(browser, server, dog_photo)
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;"
        )
        assert overflow <= 0  # nothing sticks out sideways
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SCREENSHOTS / "app-phone.png"))
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_gunicorn_refuses_an_oversized_chunked_upload(server):
    host, port = server.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.putrequest("POST", "/api/predict")
    connection.putheader("Transfer-Encoding", "chunked")  # no Content-Length to check up front
    connection.endheaders()
    chunk = b"\xff\xd8\xff" + bytes(64 * 1024)
    try:
        for _ in range(192):  # 12 MB against the default limit of 10 MB
            connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        connection.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered at the limit and closed: its answer is still to be read
    response = connection.getresponse()
    body = json.loads(response.read())
    connection.close()
    assert response.status == 413 and body["error"]["code"] == "too_large"
    with urllib.request.urlopen(f"{server}/healthz", timeout=10) as health:
        assert health.status == 200  # and the worker is fine


def test_the_browser_reaches_no_host_but_127_0_0_1(server, browser):
    """tests/_browser.py's host rule: the same server by another name does not resolve."""
    browser.get(f"{server}/healthz")
    assert '"status":"ok"' in browser.page_source.replace(" ", "")
    from selenium.common.exceptions import WebDriverException

    with pytest.raises(WebDriverException, match="ERR_NAME_NOT_RESOLVED"):
        browser.get(f"{server.replace('127.0.0.1', 'localhost')}/healthz")
    browser.get_log("browser")  # the failed load's console entry is not another test's
