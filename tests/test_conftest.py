"""The suite's own harness: a run without the shared clips says so in its summary."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

NEEDS_CLIPS = '''
def test_reads_the_manifest(manifest):
    assert manifest

def test_looks_up_a_clip(clip):
    assert clip("jfk")

def test_needs_no_clip():
    pass
'''


def run_with_clips_in(folder: Path, tmp_path: Path) -> str:
    """pytest on three small tests, with tests/conftest.py as a plugin and the clips looked for in `folder`."""
    (tmp_path / "test_clips.py").write_text(NEEDS_CLIPS)
    env = {**os.environ, "HUSHSCRIBE_TEST_AUDIO": str(folder)}
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider",
                             "--rootdir", str(tmp_path), str(tmp_path / "test_clips.py")],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    return result.stdout


def test_missing_clips_get_a_section_that_says_where_they_were_looked_for(tmp_path):
    empty = tmp_path / "no-clips"
    empty.mkdir()
    out = run_with_clips_in(empty, tmp_path)
    assert f"shared clips: {empty} (not found" in out  # the header
    section = out[out.index("shared clips missing"):]
    assert f"2 tests did not run: no manifest.jsonl in {empty}" in section
    assert "HUSHSCRIBE_TEST_AUDIO" in section and "../shared/audio" in section
    assert "1 passed, 2 skipped" in section


def test_a_run_with_the_clips_has_no_such_section(tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "manifest.jsonl").write_text('{"file": "en/jfk.flac", "lang": "en", "text": "ask not"}\n')
    out = run_with_clips_in(clips, tmp_path)
    assert f"shared clips: {clips}\n" in out and "3 passed" in out
    assert "shared clips missing" not in out
