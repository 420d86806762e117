"""`hushscribe batch`: an archive of mixed files (some broken) through the in-process runner and a
local Ray cluster, resumed, and with a Ray worker killed in the middle. The Ray runner's scheduling
decisions are tested without Ray in test_schedule.py."""

from __future__ import annotations

import importlib.util
import json
import shutil
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from hushscribe.batch import MANIFEST, LocalRunner, run_batch, walk
from hushscribe.options import OutputOptions, TranscribeOptions
from hushscribe.scoring import error_rate

from .bad_inputs import JFK_TEXT, build

OUTPUT = OutputOptions(formats=("txt", "json"))
OPTIONS = TranscribeOptions()  # each file's language detected
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="the Ray runner needs Ray: pip install 'hushscribe[batch]'")


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """The bad-input corpus in nested folders, plus the bundled samples: 22 files."""
    root = tmp_path_factory.mktemp("archive")
    cases = build(root / "2024" / "odd")
    samples = Path(__file__).resolve().parent.parent / "samples"
    (root / "2025").mkdir()
    shutil.copy(samples / "jfk.flac", root / "2025" / "jfk.flac")
    shutil.copy(samples / "aishell_zh.wav", root / "aishell_zh.wav")
    expected = {f"2024/odd/{c.name}": c.expect for c in cases}
    expected.update({"2025/jfk.flac": "speech", "aishell_zh.wav": "chinese"})
    return root, expected


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / MANIFEST).read_text().splitlines()]


def good_files(expected: dict[str, str]) -> Counter:
    """Each file that should be transcribed, once."""
    return Counter(name for name, expect in expected.items() if expect != "error")


def check_outputs(out: Path, expected: dict[str, str]) -> None:
    latest = {r["file"]: r for r in records(out)}
    assert set(latest) == set(expected)
    for name, expect in expected.items():
        stem = out / Path(name).with_suffix("")
        txt = stem.with_name(stem.name + ".txt")
        if expect == "error":
            assert latest[name]["status"] == "failed" and latest[name]["attempt"] == 2, name
            assert Path(name).name in latest[name]["error"] and not txt.exists()
            continue
        assert latest[name]["status"] == "done" and txt.exists(), name
        text = json.loads(stem.with_name(stem.name + ".json").read_text())["text"] if expect != "empty" else ""
        if expect == "speech":
            assert error_rate(JFK_TEXT, text) < 0.1, name
        elif expect == "empty":
            assert txt.read_text().strip() == ""
        else:  # the Mandarin sample
            assert sum("\u4e00" <= ch <= "\u9fff" for ch in text) >= 8, text


def test_in_process_then_resumed(archive, tmp_path):
    root, expected = archive
    out = tmp_path / "out"
    summary = run_batch(root, out, output=OUTPUT, options=OPTIONS, engine="whisper", quiet=True)
    assert Counter(i.relative for i in summary.done) == good_files(expected)
    assert set(summary.failed) == {n for n, e in expected.items() if e == "error"}
    check_outputs(out, expected)

    again = run_batch(root, out, output=OUTPUT, options=OPTIONS, engine="whisper", quiet=True)
    assert again.done == [] and len(again.skipped) == len(summary.done) and again.failed == summary.failed

    changed = out / "2025" / "jfk.txt"
    changed.unlink()  # an output gone: that file alone is done again
    third = run_batch(root, out, output=OUTPUT, options=OPTIONS, engine="whisper", quiet=True)
    assert [i.relative for i in third.done] == ["2025/jfk.flac"] and changed.exists()

    # other options shape other outputs: every file is done again, then skipped under the new options
    stamped, unstamped = changed.read_text(), replace(OUTPUT, timestamps=False)
    fourth = run_batch(root, out, output=unstamped, options=OPTIONS, engine="whisper", quiet=True)
    assert Counter(i.relative for i in fourth.done) == good_files(expected)
    assert changed.read_text() == stamped.split("] ", 1)[1]  # the same text without its [00:00:00]
    fifth = run_batch(root, out, output=unstamped, options=OPTIONS, engine="whisper", quiet=True)
    assert fifth.done == [] and len(fifth.skipped) == len(fourth.done)


class ClusterGone(LocalRunner):
    """A runner whose cluster lost every worker: each file comes back failed for that."""

    workers_left = False

    def run(self, items):
        for item in items:
            yield item, f"{item.relative}: no worker is left (every worker died and none could be replaced)"


def test_files_a_lost_cluster_could_not_do_are_done_by_the_next_run(archive, tmp_path):
    root, expected = archive
    out = tmp_path / "out"
    gone = run_batch(root, out, output=OUTPUT, options=OPTIONS, engine="whisper", quiet=True, worker=ClusterGone)
    assert set(gone.failed) == set(expected) and all("run batch again" in e for e in gone.failed.values())
    assert not (out / MANIFEST).exists() or (out / MANIFEST).read_text() == ""  # nothing recorded as failed
    back = run_batch(root, out, output=OUTPUT, options=OPTIONS, engine="whisper", quiet=True)
    assert Counter(i.relative for i in back.done) == good_files(expected)


def test_walk_reads_the_length_of_a_file_whose_tags_are_not_utf8(archive):
    root, _ = archive
    lengths = {item.relative: item.seconds for item in walk(root)}
    assert lengths["2025/jfk.flac"] == pytest.approx(11.0, abs=0.01)  # not 0.0, "unknown"
    assert lengths["2024/odd/latin1_tags.wav"] == pytest.approx(lengths["2025/jfk.flac"], abs=0.01)


@pytest.fixture(scope="module")
def local_ray():
    """Ray, started on this machine."""
    import ray

    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)  # the GPU: a name to schedule by
    yield ray
    ray.shutdown()


@needs_ray
def test_ray_with_a_worker_killed_midway_loses_nothing_and_writes_once(archive, tmp_path, local_ray):
    ray = local_ray
    root, expected = archive
    out = tmp_path / "out"
    lost = []

    def kill_one_worker():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if (out / MANIFEST).exists() and sum(r["status"] == "done" for r in records(out)) >= 2:
                actors = [a for a in ray.util.list_named_actors(all_namespaces=True)
                          if a["name"].startswith("hushscribe-worker")]
                ray.kill(ray.get_actor(actors[0]["name"], namespace=actors[0]["namespace"]))
                lost.append(actors[0]["name"])
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_worker, daemon=True)
    killer.start()
    summary = run_batch(root, out, output=OUTPUT, options=OPTIONS, engine="whisper", ray_address="local",
                        cpus_per_worker=1, quiet=True)
    killer.join(timeout=5)
    assert lost, "no worker was killed"
    check_outputs(out, expected)
    done = Counter(r["file"] for r in records(out) if r["status"] == "done")
    assert done == good_files(expected)  # each written once
    assert Counter(i.relative for i in summary.done) == good_files(expected)

    again = run_batch(root, out, output=OUTPUT, options=OPTIONS, engine="whisper", ray_address="local",
                      cpus_per_worker=1, quiet=True)
    assert again.done == [] and again.seconds == 0


@needs_ray
def test_a_file_that_kills_its_worker_fails_alone_and_the_files_beside_it_are_done(tmp_path, local_ray):
    """A GPU-style worker (several files at once, here on the CPU) dies whenever it reads one poisoned file. The
    files it held beside it are innocent: each is done once, and only the poisoned one is reported."""
    import os

    from hushscribe.batch import FILES_PER_GPU_WORKER, LocalRunner

    class PoisonedWorker(LocalRunner):
        def transcribe(self, source):
            if source.name == "poison.flac":
                os._exit(1)  # as a segfault or the OOM killer would
            return super().transcribe(source)

    samples = Path(__file__).resolve().parent.parent / "samples"
    root = tmp_path / "archive"
    (root / "talks").mkdir(parents=True)
    names = [f"talks/jfk{i}.flac" for i in range(FILES_PER_GPU_WORKER)]
    for name in [*names, "poison.flac"]:
        shutil.copy(samples / "jfk.flac", root / name)
    out = tmp_path / "out"
    summary = run_batch(root, out, output=OUTPUT, options=TranscribeOptions(language="en"), engine="whisper",
                        device="cpu", ray_address="local", gpus_per_worker=1, quiet=True, worker=PoisonedWorker)
    assert list(summary.failed) == ["poison.flac"] and "died twice" in summary.failed["poison.flac"]
    assert sorted(i.relative for i in summary.done) == names
    done = Counter(r["file"] for r in records(out) if r["status"] == "done")
    assert done == Counter(names)  # each written once
    for name in names:
        text = json.loads((out / name).with_suffix(".json").read_text())["text"]
        assert error_rate(JFK_TEXT, text) < 0.1, name


@needs_ray  # without Ray the CLI says so before it looks for a cluster
def test_an_unreachable_cluster_is_one_message_within_seconds(archive, tmp_path):
    import subprocess
    import sys

    from .servers import free_port

    root, _ = archive
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "hushscribe", "batch", str(root), "-o", str(tmp_path / "out"),
                             "--ray", f"127.0.0.1:{free_port()}", "-q"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and time.monotonic() - started < 60
    assert result.stderr.count("\n") == 1 and "cannot reach the Ray cluster at '127.0.0.1:" in result.stderr
    assert "Traceback" not in result.stderr


def test_ctrl_c_stops_cleanly_and_the_next_run_finishes(archive, tmp_path):
    """SIGINT once the first files are done: exit 130, every manifest line whole, no half-written output,
    and the same command then does only what was left."""
    import signal
    import subprocess
    import sys

    from .servers import sigint_as_in_a_terminal

    root, expected = archive
    out = tmp_path / "out"
    command = [sys.executable, "-m", "hushscribe", "batch", str(root), "-o", str(out), "--engine", "whisper", "-q"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=sigint_as_in_a_terminal)
    deadline = time.monotonic() + 300
    while not ((out / MANIFEST).exists() and sum(r["status"] == "done" for r in records(out)) >= 2):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr
    first = records(out)  # each line parses
    assert 2 <= len(first) < len(expected)
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]  # nothing half-written
    finished = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 1  # the broken files are reported
    check_outputs(out, expected)
    done = Counter(r["file"] for r in records(out) if r["status"] == "done")
    assert done == good_files(expected)  # nothing done twice across the two runs
