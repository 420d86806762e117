"""Recognition engines behind one small protocol (see base.py)."""

from __future__ import annotations

from hushscribe.engines.base import Engine
from hushscribe.errors import HushError

ENGINES = ("auto", "whisper", "qwen")


def load_engine(name: str = "auto", *, model: str | None = None, device: str = "auto") -> Engine:
    """Load an engine once; `auto` takes the embedded Whisper on CPU."""
    if name not in ENGINES:
        raise HushError(f"unknown engine '{name}'; choose one of {', '.join(ENGINES)}")
    if name == "qwen":
        raise HushError("the Qwen3-ASR engine is not available in this version; use --engine whisper")
    from hushscribe.engines.whisper import WhisperEngine

    return WhisperEngine(model, device="cpu" if device == "auto" else device)
