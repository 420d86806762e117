"""The voice encoder: Resemblyzer's GE2E encoder (Apache-2.0, 1.4 M parameters), (batch, frames, N_MELS) mel
spectrograms → (batch, 256) unit embeddings; a window of up to 1.6 s (the length it was trained on) gives one.

Converted to ONNX by tools/convert_speaker_encoder.py and shipped in hushscribe/assets, so it needs no download,
no torch and nothing beyond onnxruntime (already here for Silero VAD). Where recognition runs on a CUDA GPU, the
same weights run there in torch (speaker_encoder.npz)."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

from hushscribe.audio import cpu_threads
from hushscribe.errors import HushError
from hushscribe.speakers.features import N_MELS

ASSETS = Path(__file__).parent.parent / "assets"  # hushscribe/assets, package data of the wheel
ENCODER_PATH = ASSETS / "speaker_encoder.onnx"
WEIGHTS_PATH = ENCODER_PATH.with_suffix(".npz")  # the same weights, for torch on a GPU
EMBEDDING = 256
BATCH = 256  # windows per encoder call


class SpeakerEncoder:
    """The voice encoder on the CPU (onnxruntime, every core this process is given): (batch, frames, N_MELS) mel
    spectrograms → (batch, 256) unit embeddings."""

    def __init__(self, path: Path = ENCODER_PATH) -> None:
        import onnxruntime

        if not Path(path).exists():
            raise HushError(f"the speaker model is missing ({path}); reinstall hushscribe")
        onnxruntime.disable_telemetry_events()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = cpu_threads()
        options.log_severity_level = 4
        self.session = onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])

    def embed(self, mels: np.ndarray) -> np.ndarray:
        out = [self.session.run(None, {"mels": mels[i:i + BATCH]})[0] for i in range(0, len(mels), BATCH)]
        return np.concatenate(out) if out else np.zeros((0, EMBEDDING), np.float32)


class TorchSpeakerEncoder:
    """The same encoder in torch, for a CUDA GPU: the weights of speaker_encoder.npz (torch's own layout) in
    nn.LSTM and nn.Linear. An hour of speech takes well under a second."""

    def __init__(self, device: str = "cuda", path: Path = WEIGHTS_PATH) -> None:
        import torch

        weights = {name: torch.from_numpy(array) for name, array in np.load(path).items()}
        self.torch, self.device = torch, torch.device(device)
        self.lstm = torch.nn.LSTM(N_MELS, EMBEDDING, num_layers=3, batch_first=True)
        self.linear = torch.nn.Linear(EMBEDDING, EMBEDDING)
        self.lstm.load_state_dict({k.removeprefix("lstm."): v for k, v in weights.items() if k.startswith("lstm.")})
        self.linear.load_state_dict({k.removeprefix("linear."): v for k, v in weights.items()
                                     if k.startswith("linear.")})
        self.lstm.to(self.device).eval()
        self.linear.to(self.device).eval()

    def embed(self, mels: np.ndarray) -> np.ndarray:
        torch = self.torch
        if len(mels) == 0:
            return np.zeros((0, EMBEDDING), np.float32)
        with torch.inference_mode():
            _, (hidden, _) = self.lstm(torch.from_numpy(np.ascontiguousarray(mels)).to(self.device))
            embeddings = torch.nn.functional.normalize(torch.relu(self.linear(hidden[-1])), dim=1)
            return embeddings.float().cpu().numpy()


@functools.lru_cache(maxsize=2)
def default_encoder(device: str = "cpu") -> SpeakerEncoder | TorchSpeakerEncoder:
    """The encoder for the device recognition runs on: torch on a CUDA device (where torch with CUDA is installed;
    Whisper can run on CUDA without it), else onnxruntime on the CPU."""
    if device.startswith("cuda") and importlib.util.find_spec("torch") is not None:
        import torch

        if torch.cuda.is_available():
            return TorchSpeakerEncoder(device)
    return SpeakerEncoder()
