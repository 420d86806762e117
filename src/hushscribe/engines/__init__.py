"""Recognition engines behind one small protocol (see base.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from hushscribe.engines.base import Engine
from hushscribe.errors import HushError

ENGINES = ("auto", "whisper", "qwen")


def load_engine(name: str = "auto", *, model: str | None = None, device: str = "auto",
                compile: bool = True, aligner: str | None = None) -> Engine:
    """Load an engine once. `auto` takes Qwen3-ASR when a CUDA GPU and its weights are here,
    else the embedded Whisper on the CPU. `aligner` is the forced aligner's folder, which Qwen3-ASR times words
    with (default: the cached download, if any); Whisper times words itself."""
    if name not in ENGINES:
        raise HushError(f"unknown engine '{name}'; choose one of {', '.join(ENGINES)}")
    if name == "auto":
        name = "qwen" if _qwen_usable(model, device) else "whisper"
    if name == "qwen":
        if importlib.util.find_spec("transformers") is None or importlib.util.find_spec("torch") is None:
            raise HushError("the Qwen3-ASR engine needs torch and transformers: pip install 'hushscribe[qwen]' "
                            "(on a machine without a CUDA GPU, install torch's CPU build first)")
        from hushscribe.engines.qwen import QwenEngine

        return QwenEngine(model, device=device, compile=compile, aligner=aligner)
    from hushscribe.engines.whisper import WhisperEngine

    return WhisperEngine(model, device="cpu" if device == "auto" else device)


def _qwen_usable(model: str | None, device: str) -> bool:
    if device == "cpu" or importlib.util.find_spec("torch") is None:
        return False
    if model and Path(model).is_dir() and (Path(model) / "model.bin").exists():
        return False  # a faster-whisper folder
    from hushscribe.models import resolve_qwen

    try:
        resolve_qwen(model)
    except HushError:
        return False
    import torch

    return torch.cuda.is_available()
