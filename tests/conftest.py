"""Shared fixtures: the real clips in ../shared/audio, one loaded engine, and a network guard."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_AUDIO = Path(os.environ.get("HUSHSCRIBE_TEST_AUDIO", REPO.parent / "shared" / "audio"))
CLIPS_MISSING = "shared clips not found"  # starts the skip reason, so that the summary can count those skips
QWEN_MISSING = ("the Qwen engine needs torch and transformers: install torch's CPU build (on a machine without a GPU "
                "a plain install takes a multi-GB CUDA build), then pip install -e '.[qwen]'")


def pytest_report_header(config):
    found = (SHARED_AUDIO / "manifest.jsonl").exists()
    return f"shared clips: {SHARED_AUDIO}" + ("" if found else " (not found: the tests that need them will skip)")


def pytest_terminal_summary(terminalreporter):
    """Tests skipped for lack of the clips get a section of their own: a run without them must not pass for a full one."""
    missed = [report for report in terminalreporter.stats.get("skipped", [])
              if isinstance(report.longrepr, tuple) and CLIPS_MISSING in report.longrepr[2]]
    if not missed:
        return
    terminalreporter.section("shared clips missing", sep="!", yellow=True, bold=True)
    tests = "test" if len(missed) == 1 else "tests"
    terminalreporter.line(f"{len(missed)} {tests} did not run: no manifest.jsonl in {SHARED_AUDIO}")
    terminalreporter.line("Put the shared clips in ../shared/audio beside the checkout, or point HUSHSCRIBE_TEST_AUDIO "
                          "at the folder that holds manifest.jsonl.")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any connection to a non-loopback address fails the test: transcription must work offline."""
    real_connect = socket.socket.connect

    def guarded_connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            try:
                loopback = ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = host == "localhost"
            if not loopback:
                raise AssertionError(f"network access attempted: {address}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


@pytest.fixture(scope="session")
def shared_audio() -> Path:
    return SHARED_AUDIO


@pytest.fixture(scope="session")
def manifest() -> list[dict]:
    path = SHARED_AUDIO / "manifest.jsonl"
    if not path.exists():
        pytest.skip(f"{CLIPS_MISSING} at {SHARED_AUDIO} (set HUSHSCRIBE_TEST_AUDIO)")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for row in rows:
        row["path"] = SHARED_AUDIO / row["file"]
    return rows


@pytest.fixture(scope="session")
def clip(manifest):
    """Look a shared clip up by a part of its file name."""

    def find(fragment: str) -> dict:
        return next(row for row in manifest if fragment in row["file"])

    return find


@pytest.fixture(scope="session")
def transcriber():
    from hushscribe import Transcriber

    return Transcriber("whisper")


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory) -> Path:
    """A tiny random Qwen3-ASR checkpoint folder, built once per run (tests/qwen_checkpoint.py)."""
    pytest.importorskip("torch", reason=QWEN_MISSING)
    pytest.importorskip("transformers", reason=QWEN_MISSING)
    from .qwen_checkpoint import build_checkpoint

    return build_checkpoint(tmp_path_factory.mktemp("tiny-qwen"))


@pytest.fixture(scope="session")
def tiny_aligner(tmp_path_factory) -> Path:
    """A tiny random Qwen3-ForcedAligner checkpoint folder, built once per run (tests/qwen_checkpoint.py)."""
    pytest.importorskip("torch", reason=QWEN_MISSING)
    pytest.importorskip("transformers", reason=QWEN_MISSING)
    from .qwen_checkpoint import build_aligner

    return build_aligner(tmp_path_factory.mktemp("tiny-aligner"))
