"""hushscribe: private, fast speech-to-text that never leaves your machine."""

import os as _os

# Nothing may reach the network at run time: model libraries must not look anything up on a hub.
_os.environ.setdefault("HF_HUB_OFFLINE", "1")
_os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
_os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# onnxruntime (≥ 1.2x, Linux too) ships Microsoft 1DS telemetry that looks up
# mobile.events.data.microsoft.com from a background thread; tests/test_privacy.py caught it.
_os.environ["ORT_DISABLE_TELEMETRY"] = "1"
_os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # Ray (hushscribe batch --ray) reports usage by default

from hushscribe.models import cache_dir as _cache_dir  # noqa: E402

# torch.compile's generated kernels (no user data) belong in our cache folder: left to itself, torch fixes its
# folder at import inside the temporary folder, which is a process's private one here, removed at exit.
_os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(_cache_dir() / "torch-compile" / "inductor"))
_os.environ.setdefault("TRITON_CACHE_DIR", str(_cache_dir() / "torch-compile" / "triton"))  # our own kernels

from hushscribe.errors import HushError  # noqa: E402
from hushscribe.transcriber import TranscribeOptions, Transcriber  # noqa: E402
from hushscribe.transcript import Segment, Transcript, Word  # noqa: E402

__all__ = ["HushError", "Segment", "TranscribeOptions", "Transcriber", "Transcript", "Word"]
__version__ = "0.1.0"
