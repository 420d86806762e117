"""The privacy promises, proven by running the real surfaces:

- inside a fresh network namespace (`unshare -n`, only loopback up) the CLI (Whisper and Qwen
  engines), the API server and a web session all work, and under `strace` no hushscribe process
  even tries to connect() or sendto() anything but loopback or local sockets;
- temporary data lives in private folders that are gone after a success, a decode error, a
  cancelled job and a killed server (the next start clears what the killed one left);
- logs carry no transcript text unless --debug is given.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from hushscribe.scoring import error_rate

from .bad_inputs import write_wav
from .servers import sigint_as_in_a_terminal

REPO = Path(__file__).resolve().parent.parent
PROBE = Path(__file__).resolve().parent / "privacy_probe.py"


def _can_unshare() -> bool:
    if not (shutil.which("unshare") and shutil.which("ip")):
        return False
    return subprocess.run(["unshare", "-n", "ip", "link", "set", "lo", "up"], capture_output=True).returncode == 0


isolated = pytest.mark.skipif(not (_can_unshare() and shutil.which("strace")),
                              reason="needs unshare -n (root or user namespaces), ip and strace")

# connect()/sendto() to an address: the family and the address as strace prints them
_ADDRESS = re.compile(r"(connect|sendto)\(\d+, .*?\{sa_family=(AF_\w+)(.*?)\}")
_LOCAL_FAMILIES = {"AF_UNIX", "AF_NETLINK", "AF_UNSPEC"}


def outside_connections(log: str) -> list[str]:
    """The lines of an `strace -e trace=connect,sendto` log that reach beyond this machine."""
    bad = []
    for line in log.splitlines():
        match = _ADDRESS.search(line)
        if not match:
            continue
        family, rest = match.group(2), match.group(3)
        if family in _LOCAL_FAMILIES:
            continue
        if family == "AF_INET" and 'inet_addr("127.' in rest:
            continue
        if family == "AF_INET6" and re.search(r'inet_pton\(AF_INET6, "(::1|::ffff:127\.[\d.]+)"', rest):
            continue
        bad.append(line)
    return bad


def test_the_connection_check_catches_an_outside_address():
    log = ('12 connect(5, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("140.82.112.3")}, 16) = -1\n'
           '12 connect(6, {sa_family=AF_INET, sin_port=htons(8000), sin_addr=inet_addr("127.0.0.1")}, 16) = 0\n'
           '12 connect(7, {sa_family=AF_UNIX, sun_path="/run/x"}, 110) = 0\n'
           '12 sendto(8, "x", 1, 0, {sa_family=AF_INET6, sin6_port=htons(53), sin6_flowinfo=htonl(0), '
           'inet_pton(AF_INET6, "2001:4860::8888", &sin6_addr), sin6_scope_id=0}, 28) = -1\n')
    bad = outside_connections(log)
    assert len(bad) == 2 and "140.82.112.3" in bad[0] and "2001:4860" in bad[1]


@pytest.mark.skipif(not shutil.which("strace"), reason="needs strace")
def test_strace_sees_a_connection_attempt(tmp_path):
    """The same strace command line as the probe logs a real connect(), so an empty log means none."""
    log = tmp_path / "probe.strace"
    code = ("import socket; s = socket.socket(); s.settimeout(0.2)\n"
            "try: s.connect(('192.0.2.1', 9))\nexcept OSError: pass")
    subprocess.run(["strace", "-f", "-qq", "-e", "trace=connect,sendto", "-o", str(log), sys.executable, "-c", code],
                   check=True, timeout=60)
    assert any("192.0.2.1" in line for line in outside_connections(log.read_text()))


def run_isolated(surface: str, out: Path, clip: Path, *extra: str) -> dict:
    command = f'ip link set lo up && exec "{sys.executable}" "{PROBE}" {surface} "{out}" "{clip}" ' + " ".join(extra)
    result = subprocess.run(["unshare", "-n", "sh", "-c", command], capture_output=True, text=True, timeout=900,
                            cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    log = (out / f"{surface}.strace").read_text()  # strace wrote it: it ran
    report["outside"] = outside_connections(log)
    return report


@isolated
def test_cli_transcribes_with_no_network_and_connects_nowhere(clip, tmp_path):
    row = clip("jfk")
    report = run_isolated("cli", tmp_path, row["path"])
    assert report["rc"] == 0, report["stderr"]
    assert error_rate(row["text"], report["text"]) < 0.1
    assert report["outside"] == []


@isolated
def test_qwen_model_loading_connects_nowhere(clip, tmp_path, tiny_qwen):
    report = run_isolated("cli", tmp_path, clip("jfk")["path"], "--model", str(tiny_qwen))
    assert report["rc"] == 0, report["stderr"]
    assert report["outside"] == []


@isolated
def test_api_request_with_no_network_connects_nowhere(clip, tmp_path):
    pytest.importorskip("openai")
    row = clip("jfk")
    report = run_isolated("api", tmp_path, row["path"])
    assert error_rate(row["text"], report["text"]) < 0.1
    assert report["outside"] == []


@isolated
@pytest.mark.slow
def test_web_session_with_no_network_connects_nowhere(clip, tmp_path):
    from tests.test_web_browser import CHROMEDRIVER, CHROMIUM

    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("needs Debian's chromium and chromium-driver")
    row = clip("jfk")
    report = run_isolated("web", tmp_path, row["path"])
    assert error_rate(row["text"], report["text"]) < 0.1
    assert report["outside"] == []


@isolated
@pytest.mark.slow
def test_live_page_with_no_network_connects_nowhere_and_keeps_nothing(clip, tmp_path):
    """Live captions from the browser's microphone (Chromium's fake one playing a clip) over the Realtime
    WebSocket: the server connects nowhere, the page contacts only this machine, and nothing reaches the disk."""
    from tests.test_web_browser import CHROMEDRIVER, CHROMIUM

    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("needs Debian's chromium and chromium-driver")
    row = clip("jfk")
    report = run_isolated("live", tmp_path, row["path"])
    assert error_rate(row["text"], report["text"]) < 0.1
    assert report["outside"] == [] and report["hosts"] == ["127.0.0.1"]
    assert report["files"] == []


# --- temporary data ---------------------------------------------------------------------------------------------


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def ours(root: Path) -> list[Path]:
    return sorted(root.glob("hushscribe-*"))


def env_with_root(root: Path) -> dict:
    return {**os.environ, "HUSHSCRIBE_TMPDIR": str(root), "HUSHSCRIBE_API_KEY": ""}


def test_cli_leaves_nothing_after_success_error_and_cancel(clip, tmp_path):
    root, out = tmp_path / "tmp", tmp_path / "out"
    root.mkdir()
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF" + bytes(100))
    run = [sys.executable, "-m", "hushscribe", "transcribe", "--engine", "whisper", "-o", str(out), "-q"]
    ok = subprocess.run([*run, str(clip("jfk")["path"]), str(broken)], env=env_with_root(root),
                        capture_output=True, text=True)
    assert ok.returncode == 1 and "broken.wav" in ok.stderr  # one bad file, one good
    assert (out / f"{clip('jfk')['path'].stem}.txt").exists()
    assert ours(root) == []

    long = tmp_path / "long.wav"  # 5 min: cancelled well before the end
    write_wav(long, np.tile(read_clip(clip("librispeech")["path"]), 40))
    process = subprocess.Popen([*run, str(long)], env=env_with_root(root), stderr=subprocess.PIPE, text=True,
                               preexec_fn=sigint_as_in_a_terminal)
    time.sleep(12)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert ours(root) == []
    assert not list(out.glob("long*")) and not list(out.glob(".*tmp"))  # no partial output


def read_clip(path: Path) -> np.ndarray:
    from hushscribe.audio import decode

    return decode(path)


def test_server_keeps_uploads_in_a_private_folder_and_a_killed_one_is_cleared(clip, tmp_path):
    pytest.importorskip("openai")
    from tests.test_server import health, start_server, stop

    root = tmp_path / "tmp"
    root.mkdir()
    os.environ["HUSHSCRIBE_TMPDIR"] = str(root)  # inherited by the servers started below
    try:
        process, base = start_server("--engine", "whisper")
        folders = ours(root)
        assert len(folders) == 1 and (folders[0].stat().st_mode & 0o777) == 0o700
        import openai

        client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=600)
        with open(clip("jfk")["path"], "rb") as f:
            assert client.audio.transcriptions.create(model="whisper-1", file=f).text
        with pytest.raises(openai.BadRequestError):
            client.audio.transcriptions.create(model="whisper-1", file=("bad.wav", b"RIFF" + bytes(64)))
        assert files_under(root) == []  # the uploads went with their requests

        # killed in the middle of a request: its upload is left behind ...
        long = tmp_path / "long.wav"
        write_wav(long, np.tile(read_clip(clip("librispeech")["path"]), 20))
        sender = threading.Thread(target=_post_quietly, args=(client, long), daemon=True)
        sender.start()
        deadline = time.monotonic() + 120
        while not files_under(root) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert files_under(root), "the upload never reached the private folder"
        children = _children(process.pid)  # the processes that decode uploads
        process.kill()
        process.wait()
        assert files_under(root)
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{pid}").exists() for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in children if Path(f"/proc/{pid}").exists()], "workers outlived the killed server"
        # ... and the next start removes it
        process, base = start_server("--engine", "whisper")
        assert files_under(root) == [] and len(ours(root)) == 1 and health(base)["status"] == "ok"
        stop(process)
        assert ours(root) == []  # a clean stop removes its own folder
    finally:
        os.environ.pop("HUSHSCRIBE_TMPDIR", None)


def _children(pid: int) -> list[int]:
    """The processes that any thread of `pid` started (Linux /proc, as privacy_probe reads them)."""
    return [int(child) for task in Path(f"/proc/{pid}/task").glob("*/children") for child in task.read_text().split()]


def _post_quietly(client, path: Path) -> None:
    try:
        with open(path, "rb") as f:
            client.audio.transcriptions.create(model="whisper-1", file=f)
    except Exception:  # the server is killed under it
        pass


# --- logs -------------------------------------------------------------------------------------------------------


def test_logs_hold_no_transcript_text_unless_debug(clip, tmp_path):
    row = clip("jfk")
    run = [sys.executable, "-m", "hushscribe", "transcribe", str(row["path"]), "--engine", "whisper", "-o",
           str(tmp_path), "--overwrite"]
    quiet = subprocess.run(run, capture_output=True, text=True)
    assert quiet.returncode == 0
    assert "country" in (tmp_path / f"{row['path'].stem}.txt").read_text()
    assert "country" not in quiet.stderr + quiet.stdout
    debug = subprocess.run([*run, "--debug"], capture_output=True, text=True)
    assert debug.returncode == 0 and "country" in debug.stderr  # the check would see text if it were there
