"""Runs one hushscribe surface for tests/test_privacy.py, meant to run inside a fresh network
namespace (`unshare -n`, loopback up): every hushscribe process runs under
`strace -f -e trace=connect,sendto`, its log written into OUT. Prints one JSON line: what came back.

    python tests/privacy_probe.py cli|api|web|live OUT CLIP [--model QWEN_FOLDER]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from tests.servers import free_port, wait_until_up  # noqa: E402


def traced(out: Path, name: str, *args: str) -> list[str]:
    return ["strace", "-f", "-qq", "-s", "0", "-e", "trace=connect,sendto", "-o", str(out / f"{name}.strace"),
            sys.executable, "-m", "hushscribe", *args]


def cli(out: Path, clip: Path, model: str | None) -> dict:
    engine = ["--engine", "qwen", "--model", model, "--device", "cpu"] if model else ["--engine", "whisper"]
    result = subprocess.run(traced(out, "cli", "transcribe", str(clip), *engine, "-o", str(out / "text"),
                                   "-f", "txt", "--no-timestamps", "-q"), capture_output=True, text=True)
    text = (out / "text" / f"{clip.stem}.txt")
    return {"rc": result.returncode, "stderr": result.stderr[-2000:],
            "text": text.read_text() if text.exists() else None}


def api(out: Path, clip: Path, model: str | None) -> dict:
    import openai

    port = free_port()
    server = subprocess.Popen(traced(out, "api", "serve", "--port", str(port), "--engine", "whisper"),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/health", server)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)
        with open(clip, "rb") as f:
            text = client.audio.transcriptions.create(model="whisper-1", file=f).text
        client.close()
    finally:
        stop(server)
    return {"rc": 0, "text": text}


def stop(traced_server: subprocess.Popen) -> None:
    """SIGTERM to the hushscribe process under strace (strace itself would not pass it on)."""
    children = Path(f"/proc/{traced_server.pid}/task/{traced_server.pid}/children").read_text().split()
    for pid in children:
        os.kill(int(pid), signal.SIGTERM)
    traced_server.wait(timeout=60)


def web(out: Path, clip: Path, model: str | None) -> dict:
    from tests.test_web_browser import editor_text, start_browser, transcribe_in_page

    port = free_port()
    server = subprocess.Popen(traced(out, "web", "web", "--port", str(port)),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    browser = None
    try:
        wait_until_up(f"http://127.0.0.1:{port}/_stcore/health", server)
        browser = start_browser(out / "profile")
        transcribe_in_page(browser, f"http://127.0.0.1:{port}", [clip])
        text = editor_text(browser)
    finally:
        if browser is not None:
            browser.quit()
        stop(server)
    return {"rc": 0, "text": text}


def live(out: Path, clip: Path, model: str | None) -> dict:
    """The live page in Chromium, its fake microphone playing the clip, over `serve`'s Realtime WebSocket; also
    every file the server made while it listened (its private folder under OUT/tmp)."""
    from tests.test_live_page import captions_in_page, live_browser, microphone_wav

    port = free_port()
    server = subprocess.Popen(traced(out, "live", "serve", "--port", str(port), "--engine", "whisper"),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "HUSHSCRIBE_TMPDIR": str(out / "tmp")})
    browser = None
    try:
        wait_until_up(f"http://127.0.0.1:{port}/health", server)
        wav, seconds = microphone_wav(clip, out)
        browser = live_browser(out / "profile", wav)
        seen = captions_in_page(browser, f"http://127.0.0.1:{port}", seconds)
        files = [str(p) for p in (out / "tmp").rglob("*") if p.is_file()]
    finally:
        if browser is not None:
            browser.quit()
        stop(server)
    return {"rc": 0, "text": " ".join(seen["finals"]), "hosts": seen["hosts"], "files": files}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("surface", choices=["cli", "api", "web", "live"])
    parser.add_argument("out", type=Path)
    parser.add_argument("clip", type=Path)
    parser.add_argument("--model")
    args = parser.parse_args()
    report = {"cli": cli, "api": api, "web": web, "live": live}[args.surface](args.out, args.clip, args.model)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
