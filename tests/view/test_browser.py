"""A person's path through the page in a real headless Chromium: overview, filter, open a row, play it,
then the rejects tab by reason and a rejected row's audio."""
from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.view.browser import audio_state, chromium, wait_for
from tests.view.conftest import serving


def cells(driver, table: str, column: int) -> list[str]:
    return [td.text for td in driver.find_elements(By.CSS_SELECTOR, f"{table} tbody tr td:nth-child({column})")]


@pytest.mark.slow
def test_filter_open_a_row_and_play_it(sft_corpus):
    stored = pq.ParquetFile(sft_corpus / "data/magpie/train-00000-of-00001.parquet").read(
        columns=["id", "duration", "turns.list.element.text"]).to_pylist()
    target = stored[5]
    word = target["turns"][0]["text"][:6]
    matching = [r["id"] for r in stored if word in r["turns"][0]["text"]]
    other = pq.ParquetFile(sft_corpus / "data/automultiturn/train-00000-of-00001.parquet").metadata.num_rows
    rejects = (sft_corpus / "rejects/magpie/train-00000-of-00001.jsonl").read_text().count("\n")

    with serving(sft_corpus) as server, chromium() as driver:
        driver.get(server.url)
        wait_for(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#config-table tbody tr")) == 2, what="overview")
        assert cells(driver, "#config-table", 1) == ["automultiturn", "magpie"]
        assert len(driver.find_elements(By.CSS_SELECTOR, "#plots img")) == 5  # durations, kana-CER, OVRL, speakers, reasons

        driver.find_element(By.ID, "tab-rows").click()
        wait_for(lambda: driver.find_element(By.ID, "row-summary").text.startswith(f"{len(stored) + other} rows"), what="all rows")
        Select(driver.find_element(By.CSS_SELECTOR, "#row-filters select[name=config]")).select_by_value("magpie")
        wait_for(lambda: driver.find_element(By.ID, "row-summary").text.startswith(f"{len(stored)} rows"), what="config filter")
        assert set(cells(driver, "#row-table", 1)) == {"magpie"}
        driver.find_element(By.CSS_SELECTOR, "#row-filters input[name=q]").send_keys(word)
        wait_for(lambda: driver.find_element(By.ID, "row-summary").text.startswith(f"{len(matching)} rows"),
                 what="text filter")
        assert cells(driver, "#row-table", 2) == matching
        assert "q=" in driver.current_url and "config=magpie" in driver.current_url  # the filter is in the URL

        row = next(tr for tr in driver.find_elements(By.CSS_SELECTOR, "#row-table tbody tr")
                   if tr.find_element(By.CSS_SELECTOR, "td:nth-child(2)").text == target["id"])
        row.find_element(By.CSS_SELECTOR, "td:nth-child(7)").click()
        wait_for(lambda: target["id"] in driver.find_element(By.ID, "row-title").text, what="the row view")
        texts = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#row-body .turn .text")]
        assert texts == [t["text"] for t in target["turns"]]
        # turns are numbered as in the rows (turns[0]) and in reject details ("turn 0: ...")
        headings = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#row-body .turn .role")]
        assert headings[:2] == ["turn 0: user (spoken)", "turn 1: assistant"]
        assert "longest inside" in driver.find_element(By.CSS_SELECTOR, "#row-body .turn .signal").text

        driver.execute_script("document.querySelector('#row-body audio').play()")
        state = wait_for(lambda: (s := audio_state(driver, "#row-body audio"))["duration"] and s["time"] > 0 and s,
                         what="the audio to play")
        assert state["error"] is None
        assert state["duration"] == pytest.approx(target["duration"], abs=0.05)  # magpie: one spoken turn

        driver.find_element(By.ID, "tab-rejects").click()
        wait_for(lambda: driver.find_element(By.ID, "reject-summary").text.startswith(f"{rejects} rejected"), what="rejects")
        driver.find_element(By.CSS_SELECTOR, "#reasons a[data-reason=unspeakable_code]").click()
        wait_for(lambda: cells(driver, "#reject-table", 4) == ["unspeakable_code"] * 2, what="reason filter")
        driver.find_element(By.CSS_SELECTOR, "#reasons a.chip").click()  # "all"
        driver.find_element(By.CSS_SELECTOR, "#reject-filters input[name=audio]").click()
        wait_for(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#reject-table tr.has-audio")) == 2,
                 what="rejects with audio")
        driver.execute_script("document.querySelector('#reject-table audio').play()")
        state = wait_for(lambda: audio_state(driver, "#reject-table audio")["duration"], what="reject audio")
        assert state == pytest.approx(0.5, abs=0.01)  # the 8000-sample, 16 kHz clip written for the test

        assert driver.find_element(By.ID, "error").get_attribute("hidden") is not None  # no error shown
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert severe == [], severe  # no script error, no blocked resource (CSP)


@pytest.mark.slow
def test_a_duplex_row_plays_in_stereo_over_its_two_lane_timeline(tmp_path):
    """A full-duplex row (OpenJTalk voices, no ear: fast): the page draws one lane per channel with the row's segments
    at their times, and a click on a segment plays the stereo recording from that segment's start."""
    from tests.view.conftest import build

    out = tmp_path / "duplex"
    build("jaspeech-sft-audio", "--config", "automultiturn-duplex", "--input", "sample", "--limit", "2", "--tts",
          "openjtalk", "--asr", "none", "--out", str(out))
    [shard] = sorted((out / "data/automultiturn-duplex").glob("*.parquet"))
    row = pq.ParquetFile(shard).read(columns=["id", "duration", "segments"]).to_pylist()[0]
    per_channel = [sum(1 for g in row["segments"] if g["channel"] == ch) for ch in (0, 1)]
    assert all(per_channel)  # both parties speak

    with serving(out) as server, chromium() as driver:
        driver.get(f"{server.url}#rows?config=automultiturn-duplex")
        wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#row-table tbody tr"), what="the rows")
        first = next(tr for tr in driver.find_elements(By.CSS_SELECTOR, "#row-table tbody tr")
                     if tr.find_element(By.CSS_SELECTOR, "td:nth-child(2)").text == row["id"])
        first.find_element(By.CSS_SELECTOR, "td:nth-child(7)").click()
        wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#row-body .timeline .lane"), what="the timeline")
        lanes = driver.find_elements(By.CSS_SELECTOR, "#row-body .timeline .lane")
        assert [len(lane.find_elements(By.CSS_SELECTOR, ".seg")) for lane in lanes] == per_channel
        later = max((g for g in row["segments"] if g["channel"] == 0), key=lambda g: g["start"])
        boxes = lanes[0].find_elements(By.CSS_SELECTOR, ".seg")
        boxes[-1].click()
        state = wait_for(lambda: (s := audio_state(driver, "#row-body .duplex audio"))["time"] >= later["start"] and s,
                         what="playback from the segment's start")
        assert state["error"] is None
        assert state["duration"] >= later["end"]  # the whole recording, up to the last segment and beyond
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert severe == [], severe
