"""A real browser against the app served by gunicorn: upload a dog photo, see breeds and Grad-CAM.

Needs Debian's chromium and chromium-driver (`apt-get install -y chromium chromium-driver`) and
`pip install selenium`; skipped with the reason when they are missing. Selenium is told where
both are and runs offline, so it never downloads a browser of its own.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.default_model import default_model_dir

PROJECT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SCREENSHOTS = PROJECT / "runs" / "screenshots"
README_SCREENSHOT = PROJECT / "docs" / "app-screenshot.png"
START_TIMEOUT = 120  # seconds for gunicorn's worker to load and warm the model on a busy machine


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(
        f"gunicorn did not answer /healthz in {START_TIMEOUT} s:\n{log.read_text()[-3000:]}"
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    """gunicorn serving the app with the embedded model on a free 127.0.0.1 port."""
    port = _free_port()
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    env = {
        **os.environ,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
        "DOGGO_MODEL_DIR": str(default_model_dir()),
        "DOGGO_MAX_UPLOAD_MB": "10",
    }
    command = [sys.executable, "-m", "gunicorn", "-c", "app/gunicorn.conf.py", "app:create_app()"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=PROJECT, env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, log)
        yield url
    finally:
        process.terminate()  # gunicorn's graceful shutdown: the arbiter stops its workers
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser():
    """Headless Debian chromium through Debian's chromedriver."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        reason = "chromium/chromedriver missing: apt-get install -y chromium chromium-driver"
        if os.environ.get("CI"):  # CI installs them (make browser): a skip there would hide a gap
            pytest.fail(reason)
        pytest.skip(reason)
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium")
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not download anything
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync", "--window-size=1280,900"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


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


def test_upload_shows_breeds_and_heatmap(server, browser, dog_photo):
    from selenium.webdriver.common.by import By

    _upload_and_wait(browser, server, dog_photo)
    expected = _api_answer(server, dog_photo)
    names = [li.find_element(By.CLASS_NAME, "name").text for li in
             browser.find_elements(By.CSS_SELECTOR, "#breeds li")]  # fmt: skip
    assert names == [p["name"] for p in expected["predictions"]]
    assert expected["predictions"][0]["name"] in browser.find_element(By.ID, "verdict").text
    assert browser.find_element(By.ID, "heatmap").get_attribute("src").startswith("data:image/")
    assert expected["model"]["name"] in browser.find_element(By.TAG_NAME, "footer").text
    assert browser.find_element(By.ID, "status").text == ""  # no error shown
    problems = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert problems == []  # no script error, no Content-Security-Policy violation
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "app.png"))
    if not README_SCREENSHOT.exists() or os.environ.get("DOGGO_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(SCREENSHOTS / "app.png", README_SCREENSHOT)


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
