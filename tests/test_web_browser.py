"""The web page end to end: `hushscribe web` as a subprocess, driven by headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hushscribe.scoring import error_rate

from .servers import free_port, wait_until_up

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver"),
]
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium")
REPO = Path(__file__).resolve().parent.parent
EN_CEILING = 0.062  # the CLI test's English ceiling (plain faster-whisper on the same weights)
EDITOR = "iframe[title$='.editor']"  # a result's transcript editor (our component; the title is its name)


@pytest.fixture(scope="module")
def library_path(tmp_path_factory) -> Path:
    """The library the page's server uses: a test's own, never the user's."""
    return tmp_path_factory.mktemp("library") / "library.db"


@pytest.fixture(scope="module")
def server(library_path):
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "hushscribe", "web", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "HUSHSCRIBE_LIBRARY": str(library_path)})
    url = f"http://127.0.0.1:{port}"
    wait_until_up(f"{url}/_stcore/health", process, seconds=60)
    yield url
    process.terminate()
    process.wait(timeout=20)


def start_browser(profile: Path, *flags: str, log_network: bool = False):
    """Headless Debian Chromium with everything that phones home switched off; `log_network` keeps the DevTools
    performance log (every request and WebSocket the page makes)."""
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,2000", f"--user-data-dir={profile}", *flags):
        options.add_argument(flag)
    if log_network:
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture
def browser(tmp_path):
    driver = start_browser(tmp_path / "profile")
    yield driver
    driver.quit()


def transcribe_in_page(browser, url: str, files: list[Path], *, speakers: str = "off", word_timings: bool = False):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    wait = WebDriverWait(browser, 180)
    wait.until(ready.presence_of_element_located((By.XPATH, "//*[contains(text(), 'ready (loaded in')]")))
    if speakers != "off":
        wait.until(ready.element_to_be_clickable((By.XPATH, f"//label[.//p[text()='{speakers}']]"))).click()
    if word_timings:
        wait.until(ready.element_to_be_clickable((By.XPATH, "//label[.//p[text()='Word timings']]"))).click()
    upload = wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "input[type=file]")))
    upload.send_keys("\n".join(str(f) for f in files))
    button = wait.until(ready.element_to_be_clickable((By.XPATH, "//button[.//p[text()='Transcribe']]")))
    button.click()
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, EDITOR)))
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, EDITOR))
               + len(d.find_elements(By.CSS_SELECTOR, "[data-testid=stAlertContentError]")) >= len(files))
    return browser


def editor_text(browser, index: int = 0) -> str:
    """The lines of a result's editor (the first by default), one per segment, read inside its frame."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.switch_to.frame(browser.find_elements(By.CSS_SELECTOR, EDITOR)[index])
    try:
        lines = WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#lines .text"))
        return "\n".join(line.get_attribute("textContent") for line in lines)
    finally:
        browser.switch_to.default_content()


def test_upload_transcribe_and_read_the_result(server, browser, clip):
    from selenium.webdriver.common.by import By

    row = clip("jfk")
    transcribe_in_page(browser, server, [row["path"]])
    assert error_rate(row["text"], editor_text(browser)) <= EN_CEILING
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.XPATH, "//*[text()='ZIP']"))  # the downloads
    if os.environ.get("HUSHSCRIBE_SCREENSHOT"):
        browser.save_screenshot(os.environ["HUSHSCRIBE_SCREENSHOT"])


def test_a_broken_file_next_to_a_good_one(server, browser, clip, tmp_path):
    from selenium.webdriver.common.by import By

    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"ID3" + bytes(300))
    good = clip("librispeech")
    transcribe_in_page(browser, server, [broken, good["path"]])
    errors = " ".join(e.text for e in browser.find_elements(By.CSS_SELECTOR, "[data-testid=stAlertContentError]"))
    assert "broken.mp3" in errors
    assert error_rate(good["text"], editor_text(browser)) <= EN_CEILING


def test_bad_inputs_each_get_their_own_message(server, browser, tmp_path):
    """Files from the bad-input corpus next to a good one: one error naming each bad file, and the
    good one's transcript."""
    from selenium.webdriver.common.by import By

    from .bad_inputs import JFK_TEXT, build

    cases = {c.name: c for c in build(tmp_path / "corpus")}
    bad = ["notes.wav", "screen.mp4", "cut_header.mp3", "report.wav"]
    transcribe_in_page(browser, server, [tmp_path / "corpus" / name for name in [*bad, "six_channels.wav"]])
    errors = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "[data-testid=stAlertContentError]")]
    for name in bad:
        matching = [e for e in errors if name in e]
        assert len(matching) == 1 and cases[name].message in matching[0], (name, errors)
    assert error_rate(JFK_TEXT, editor_text(browser)) <= 0.1


def test_speakers_found_and_renamed_in_every_download(server, browser, manifest, tmp_path):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    from .conversations import two_voices_file

    audio = tmp_path / "interview.wav"
    two_voices_file(manifest, audio)
    transcribe_in_page(browser, server, [audio], speakers="auto")
    wait = WebDriverWait(browser, 60, ignored_exceptions=[StaleElementReferenceException])  # the page reruns
    name = wait.until(lambda d: d.find_elements(By.XPATH, "//input[@aria-label='Speaker 1']"))[0]
    name.send_keys("Ana", Keys.ENTER)
    preview = wait.until(lambda d: [t for t in (c.text for c in d.find_elements(By.TAG_NAME, "code"))
                                    if "Ana:" in t])[0]
    assert "Speaker 2:" in preview and "Speaker 1:" not in preview
    assert preview.count("Ana:") >= 2  # the first voice has several turns
    browser.switch_to.frame(browser.find_element(By.CSS_SELECTOR, EDITOR))
    wait.until(lambda d: "Ana:" in [e.get_attribute("textContent") for e in d.find_elements(By.CLASS_NAME, "speaker")])


def test_the_editor_plays_from_a_line_goes_to_a_word_and_its_edits_reach_the_downloads(server, clip, tmp_path):
    """Harvard sentences (35 s, two segments) with word timings: a click on the second line's time plays the
    recording from there and marks the line and the word being heard; a click on a word goes to that word; an edit
    typed into the first line reaches the transcript the downloads hold; the page contacted only this machine."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    from .test_live_page import contacted

    browser = start_browser(tmp_path / "profile", "--autoplay-policy=no-user-gesture-required", log_network=True)
    try:
        transcribe_in_page(browser, server, [clip("osr_us_000_0034")["path"]], word_timings=True)
        frame = browser.find_element(By.CSS_SELECTOR, EDITOR)
        browser.execute_script("arguments[0].scrollIntoView()", frame)
        browser.switch_to.frame(frame)
        wait = WebDriverWait(browser, 30)
        lines = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#lines li"))
        line = lines[1] if len(lines) > 1 else lines[0]
        start = float(line.get_attribute("data-start"))
        assert line.find_element(By.CSS_SELECTOR, ".time").text == f"[00:00:{int(start):02d}]"
        player = "document.getElementById('player')"

        line.find_element(By.CSS_SELECTOR, ".time").click()
        assert abs(browser.execute_script(f"return {player}.currentTime") - start) <= 0.3
        wait.until(lambda d: d.execute_script(f"return !{player}.paused && {player}.currentTime > {start + 0.2}"))
        wait.until(lambda d: "current" in line.get_attribute("class")
                   and line.find_elements(By.CSS_SELECTOR, ".word.current"))  # the line and the word heard
        if os.environ.get("HUSHSCRIBE_EDITOR_SCREENSHOT"):  # for the README: the editor following the recording
            browser.switch_to.default_content()
            browser.save_screenshot(os.environ["HUSHSCRIBE_EDITOR_SCREENSHOT"])
            browser.switch_to.frame(frame)
        browser.execute_script(f"{player}.pause()")

        first = lines[0]
        word = first.find_elements(By.CSS_SELECTOR, ".word")[2]
        word_start = float(word.get_attribute("data-start"))
        word.click()
        assert abs(browser.execute_script(f"return {player}.currentTime") - word_start) <= 0.3
        wait.until(lambda d: "current" in word.get_attribute("class") and "current" in first.get_attribute("class"))

        text = first.find_element(By.CSS_SELECTOR, ".text")
        text.send_keys(Keys.CONTROL, Keys.END)
        text.send_keys(" Edited by hand.", Keys.ENTER)
        edited = " ".join(text.get_attribute("textContent").split())
        assert edited.endswith("Edited by hand.")
        wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, "#lines li:first-child .word"))  # timed the old text
        browser.switch_to.default_content()
        from selenium.common.exceptions import StaleElementReferenceException

        # the page redraws the transcript on the rerun the edit causes: an element read mid-redraw is looked up again
        WebDriverWait(browser, 60, ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda d: any(edited in c.text for c in d.find_elements(By.TAG_NAME, "code")))
        browser.switch_to.frame(browser.find_element(By.CSS_SELECTOR, EDITOR))
        assert browser.execute_script(f"return {player}.currentTime") == pytest.approx(word_start)  # same player
        browser.switch_to.default_content()
        assert contacted(browser) == ["127.0.0.1"]
    finally:
        browser.quit()


def test_a_library_search_opens_the_transcript_with_the_player_at_the_hit(server, browser, library_path, clip):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    from hushscribe.library import open_library
    from hushscribe.transcript import Segment, Transcript

    jfk = clip("jfk")["path"]
    with open_library(library_path, create=True) as library:
        library.add(Transcript(jfk.name, 11.0, [Segment(0.0, 4.0, "And so my fellow Americans,", "en"),
                                                Segment(4.0, 11.0, "ask not what your country can do for you", "en")],
                               "en"), recording=jfk, keep_audio=True)
    browser.get(server)
    wait = WebDriverWait(browser, 120)
    wait.until(ready.element_to_be_clickable((By.XPATH, "//label[.//p[text()='Library']]"))).click()
    box = wait.until(ready.element_to_be_clickable((By.XPATH, "//input[@aria-label='Search']")))
    box.send_keys("countries", Keys.ENTER)
    marked = wait.until(lambda d: [e.text for e in d.find_elements(By.XPATH, "//strong//span")
                                   if e.text == "country"])
    assert marked == ["country"]
    wait.until(ready.element_to_be_clickable((By.XPATH, "//button[.//p[text()='Open']]"))).click()
    player = wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "audio")))
    assert wait.until(lambda d: d.execute_script("return arguments[0].readyState >= 1 && arguments[0].currentTime",
                                                 player)) == 4
