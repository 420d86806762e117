"""The live captions page end to end: `hushscribe serve` as a subprocess, headless Chromium whose fake microphone
plays a shared clip in real time (Chromium's fake media-stream flags), captions read off the page."""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest

from hushscribe.audio import SAMPLE_RATE, decode
from hushscribe.scoring import error_rate

from .bad_inputs import write_wav
from .test_web_browser import CHROMEDRIVER, CHROMIUM, start_browser

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver"),
]
pytest.importorskip("fastapi", reason="the server needs pip install 'hushscribe[server]'")
EN_CEILING = 0.062  # the CLI test's English ceiling (Whisper base on the shared English clips)


def microphone_wav(clip: Path, folder: Path) -> tuple[Path, float]:
    """The clip as Chromium's fake microphone reads it (16-bit PCM WAV), with a second of silence before and two
    after; and its length in seconds."""
    silence = np.zeros(SAMPLE_RATE, np.float32)
    audio = np.concatenate([silence, decode(clip), silence, silence])
    path = folder / "microphone.wav"
    write_wav(path, audio)
    return path, len(audio) / SAMPLE_RATE


def live_browser(profile: Path, wav: Path):
    """Chromium with a fake microphone that plays `wav` once, the permission granted as a user would."""
    return start_browser(profile, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                         f"--use-file-for-fake-audio-capture={wav}%noloop",
                         "--autoplay-policy=no-user-gesture-required", log_network=True)


def captions_in_page(browser, base: str, play_s: float, *, language: str = "en", seconds: float = 120) -> dict:
    """Open the live page, press Start, watch the captions while the microphone plays (`play_s`) until every line
    is final, press Stop, and read the lines once the page has stopped: on a loaded machine the server may not yet
    have shown the last words when the microphone ends, and Stop has it finish them, as a user would. Returns the
    final lines, the words shown before their line was final, and every address the page contacted."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(f"{base}/live")
    Select(browser.find_element(By.ID, "language")).select_by_value(language)
    browser.find_element(By.ID, "start").click()
    early, started = [], time.monotonic()
    while time.monotonic() < started + seconds:
        early += [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".line:not(.final)") if e.text.strip()]
        if time.monotonic() > started + play_s and not browser.find_elements(By.CSS_SELECTOR, ".line:not(.final)"):
            break
        time.sleep(0.1)
    browser.find_element(By.ID, "stop").click()
    while "Stopped" not in browser.find_element(By.ID, "status").text and time.monotonic() < started + seconds:
        time.sleep(0.1)
    status = browser.find_element(By.ID, "status").text
    finals = [e.find_element(By.CSS_SELECTOR, ".committed").text
              for e in browser.find_elements(By.CSS_SELECTOR, ".line.final")]
    stamp = [e.find_element(By.TAG_NAME, "time").text for e in browser.find_elements(By.CSS_SELECTOR, ".line.final")]
    return {"finals": finals, "stamps": stamp, "early": early, "status": status, "hosts": contacted(browser)}


def contacted(browser) -> list[str]:
    """Every host the page asked for or opened a WebSocket to (the DevTools performance log)."""
    hosts = set()
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] in ("Network.requestWillBeSent", "Network.webSocketCreated"):
            url = (message["params"].get("request") or {}).get("url") or message["params"].get("url", "")
            if url.startswith(("http", "ws")):
                hosts.add(urlparse(url).hostname)
    return sorted(hosts)


@pytest.fixture(scope="module")
def server():
    from .test_server import start_server, stop

    process, base = start_server("--engine", "whisper")
    yield base
    log = stop(process)
    assert "Traceback" not in log, log


def test_live_page_captions_the_microphone_and_contacts_only_this_machine(server, clip, tmp_path):
    row = clip("jfk")
    wav, seconds = microphone_wav(row["path"], tmp_path)
    browser = live_browser(tmp_path / "profile", wav)
    try:
        seen = captions_in_page(browser, server, seconds)
    finally:
        browser.quit()
    assert error_rate(row["text"], " ".join(seen["finals"])) <= EN_CEILING + 0.02, seen
    assert seen["stamps"][0] in ("[00:00:00]", "[00:00:01]"), seen  # speech starts 1 s in
    assert len(seen["early"]) >= 3, seen  # words were shown while the sentence was being spoken
    assert seen["status"] == "Stopped.", seen
    assert seen["hosts"] == ["127.0.0.1"], seen


def test_live_page_refuses_outside_resources(server):
    import urllib.request

    with urllib.request.urlopen(f"{server}/live") as response:
        policy = response.headers["Content-Security-Policy"]
        page = response.read().decode()
    assert "default-src 'self'" in policy and "connect-src 'self'" in policy
    assert "http" not in page.replace("http://127.0.0.1", "").replace("http://localhost", "")
