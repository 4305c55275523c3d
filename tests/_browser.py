"""Headless Debian chromium through Debian's chromedriver, for the browser tests of tests/app and
tests/book (imported as `tests._browser`: the project root is on sys.path through its
conftest.py).

Selenium is told where both are and runs offline, so it never downloads a browser of its own;
any host but 127.0.0.1 fails to resolve, so nothing leaves the machine. Without chromium the
tests skip with the reason, except under CI, which installs it (`make browser`): there a skip
would hide a gap, so they fail. Without selenium (a requirement of the tests) they skip.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--window-size=1280,900",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)


@contextmanager
def chromium(flags: Sequence[str] = (), logs: Sequence[str] = ("browser",)) -> Iterator[Any]:
    """Yield a Selenium driver of headless chromium with `FLAGS` and `flags`, keeping every
    entry of the `logs` named ("browser": the console, "performance": the network); quit it
    afterwards. Skips when chromium or chromedriver (fails under CI) or selenium is missing."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        reason = "chromium/chromedriver missing: apt-get install -y chromium chromium-driver"
        if os.environ.get("CI"):  # CI installs them (make browser): a skip there would hide a gap
            pytest.fail(reason)
        pytest.skip(reason)
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium")
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not download anything
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, *flags):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", dict.fromkeys(logs, "ALL"))
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()
