"""Debian's headless Chromium driven by selenium, for the viewer's browser test and the README screenshots.

Chromium and chromedriver come from apt (`scripts/setup.sh` installs them); nothing is downloaded
(the driver's path is given, so Selenium Manager is never asked).

Regenerate the README screenshots over a built corpus (with the real TTS/ASR stack, for real diffs):

    python -m tests.view.browser build/jaspeech-sft-audio docs/img --row automultiturn/0
"""
from __future__ import annotations

import argparse
import contextlib
import shutil
import tempfile
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--autoplay-policy=no-user-gesture-required", "--mute-audio", "--lang=ja"]


def _binary(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise FileNotFoundError(f"{names[0]} is not installed: run scripts/setup.sh "
                            "(apt-get install -y chromium chromium-driver)")


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 900):
    """A fresh headless Chromium (its own profile folder), closed on exit."""
    with tempfile.TemporaryDirectory(prefix="jaspeech-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = _binary("chromium", "chromium-browser")
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        options.add_argument(f"--window-size={width},{height}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(executable_path=_binary("chromedriver")), options=options)
        try:
            yield driver
        finally:
            driver.quit()


def wait_for(condition, timeout: float = 30, what: str = "the page"):
    """Poll `condition()` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = condition()
        except Exception as e:  # the element may not exist yet
            last = e
        else:
            if last:
                return last
        time.sleep(0.1)
    raise TimeoutError(f"waited {timeout:.0f} s for {what}; last: {last!r}")


def audio_state(driver, selector: str) -> dict:
    return driver.execute_script(
        "const a = document.querySelector(arguments[0]);"
        "return a && {duration: isFinite(a.duration) ? a.duration : null, time: a.currentTime,"
        " error: a.error && a.error.message, paused: a.paused};", selector)


def screenshots(folder: Path, out: Path, row: str) -> list[Path]:
    """Start `jaspeech view FOLDER`, save the overview and one row view as PNGs in `out`."""
    from tests.view.conftest import serving

    out.mkdir(parents=True, exist_ok=True)
    saved = []
    with serving(folder) as server, chromium(1280, 960) as driver:
        driver.get(server.url)
        wait_for(lambda: driver.find_elements("css selector", "#plots img"), what="the overview")
        wait_for(lambda: driver.execute_script(
            "return [...document.images].every((i) => i.complete && i.naturalWidth > 0)"), what="the plots")
        saved.append(out / "view-overview.png")
        driver.save_screenshot(str(saved[-1]))
        driver.set_window_size(1280, 900)
        driver.get(f"{server.url}#row/{row}")
        wait_for(lambda: driver.find_elements("css selector", "#row-body audio"), what="the row")
        wait_for(lambda: audio_state(driver, "#row-body audio")["duration"], what="the audio")
        saved.append(out / "view-row.png")
        driver.save_screenshot(str(saved[-1]))
        driver.set_window_size(1280, 800)
        driver.get(f"{server.url}#rows?kana_min=0.01&sort=kana_cer&order=desc")
        wait_for(lambda: driver.find_elements("css selector", "#row-table tbody tr[data-href]"), what="the rows")
        saved.append(out / "view-rows.png")
        driver.save_screenshot(str(saved[-1]))
    return saved


def main() -> None:
    ap = argparse.ArgumentParser(description="README screenshots of `jaspeech view`")
    ap.add_argument("folder", type=Path, help="a built corpus folder")
    ap.add_argument("out", type=Path, help="where to write view-overview.png, view-row.png, view-rows.png")
    ap.add_argument("--row", default="magpie/0", help="CONFIG/N of the row to show")
    args = ap.parse_args()
    for path in screenshots(args.folder, args.out, args.row):
        print(path)


if __name__ == "__main__":
    main()
