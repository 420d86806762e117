"""Rebuild src/hushscribe/assets/speaker_encoder.onnx (for onnxruntime, on the CPU) and speaker_encoder.npz (the
same weights for torch, on a GPU) from the Resemblyzer 0.1.4 wheel (Apache-2.0).

    pip download resemblyzer==0.1.4 --no-deps -d /tmp/wheels
    python tools/convert_speaker_encoder.py /tmp/wheels/Resemblyzer-0.1.4-py3-none-any.whl

Needs numpy and onnx (a build-time tool only; hushscribe itself needs neither torch nor onnx). The wheel's
pretrained.pt is a legacy (non-zip) torch pickle; it is read here with the standard pickle module, so torch is not
needed either. The graph is Resemblyzer's VoiceEncoder: LSTM(40→256, 3 layers) → last layer's final hidden state →
Linear(256→256) → ReLU → L2 normalisation. Input `mels` (batch, frames, 40) is the linear-power mel spectrogram
hushscribe.speakers computes; output `embeddings` (batch, 256).

With --check, the new file is compared with Resemblyzer itself (run it in a throwaway venv that has torch, librosa,
resemblyzer and hushscribe's own dependencies) on random audio, and with --clip the reference embeddings for
tests/data/speaker_reference.npz are written from a shared clip. Last run: mel 1.5e-7 relative, embeddings 4.6e-7.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import io
import pickle
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np

WHEEL_SHA256 = "8f12eb2f1a9982d32e8db7856de754709b59c93a77bcf0ff536584b619a9dd1f"
CHECKPOINT = "resemblyzer/pretrained.pt"
HIDDEN = 256
LAYERS = 3
REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "src" / "hushscribe" / "assets" / "speaker_encoder.onnx"
WEIGHTS = OUTPUT.with_suffix(".npz")  # torch's own names and gate order: lstm.*, linear.*

STORAGE_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "LongStorage": np.int64,
                  "IntStorage": np.int32, "HalfStorage": np.float16, "ByteStorage": np.uint8}


class _Storage:
    def __init__(self, dtype) -> None:
        self.dtype, self.array = dtype, None


class _Tensor:
    def __init__(self, storage: _Storage, offset: int, size, stride) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def numpy(self) -> np.ndarray:
        data, item = self.storage.array, self.storage.array.itemsize
        return np.lib.stride_tricks.as_strided(data[self.offset:], self.size, [s * item for s in self.stride]).copy()


class _LegacyUnpickler(pickle.Unpickler):
    """Reads torch's pre-1.6 checkpoint pickle: tensors become _Tensor views of storages filled in afterwards."""

    def __init__(self, file) -> None:
        super().__init__(file)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str):
        if module == "torch._utils" and name.startswith("_rebuild_tensor"):
            return lambda storage, offset, size, stride, *_: _Tensor(storage, offset, size, stride)
        if module == "torch._utils" and name == "_rebuild_parameter":
            return lambda tensor, *_: tensor
        if module == "torch" and name.endswith("Storage"):
            return name
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"unexpected object in checkpoint: {module}.{name}")

    def persistent_load(self, pid):
        _, type_name, key, _, _, _ = pid
        return self.storages.setdefault(key, _Storage(STORAGE_DTYPES[type_name]))


def load_legacy_checkpoint(data: bytes) -> dict[str, np.ndarray]:
    """The `model_state` of a legacy torch checkpoint as numpy arrays."""
    f = io.BytesIO(data)
    for _ in range(3):  # magic number, protocol version, system info
        pickle.load(f)
    unpickler = _LegacyUnpickler(f)
    checkpoint = unpickler.load()
    for key in pickle.load(f):  # storages follow in this order, each as an int64 count and raw data
        storage = unpickler.storages[key]
        count = struct.unpack("<q", f.read(8))[0]
        storage.array = np.frombuffer(f.read(count * np.dtype(storage.dtype).itemsize), storage.dtype)
    return {name: tensor.numpy() for name, tensor in checkpoint["model_state"].items()}


def build_onnx(state: dict[str, np.ndarray]):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def gates(w: np.ndarray) -> np.ndarray:  # torch orders LSTM gates i, f, g, o; ONNX i, o, f, c
        i, f, g, o = np.split(w, 4, axis=0)
        return np.concatenate([i, o, f, g], axis=0).astype(np.float32)

    inits = [numpy_helper.from_array(np.array([0], np.int64), "axis0"),
             numpy_helper.from_array(np.array([1], np.int64), "axis1")]
    nodes = [helper.make_node("Transpose", ["mels"], ["x0"], perm=[1, 0, 2])]  # (batch, time, 40) → (time, batch, 40)
    x = "x0"
    for layer in range(LAYERS):
        weights = {
            "W": gates(state[f"lstm.weight_ih_l{layer}"])[None],
            "R": gates(state[f"lstm.weight_hh_l{layer}"])[None],
            "B": np.concatenate([gates(state[f"lstm.bias_ih_l{layer}"]), gates(state[f"lstm.bias_hh_l{layer}"])])[None],
        }
        inits += [numpy_helper.from_array(a, f"{n}{layer}") for n, a in weights.items()]
        nodes.append(helper.make_node("LSTM", [x, f"W{layer}", f"R{layer}", f"B{layer}"], [f"y{layer}", f"h{layer}"],
                                      hidden_size=HIDDEN))
        nodes.append(helper.make_node("Squeeze", [f"y{layer}", "axis1"], [f"x{layer + 1}"]))  # drop num_directions
        x = f"x{layer + 1}"
    inits += [numpy_helper.from_array(state["linear.weight"].astype(np.float32), "linear_w"),
              numpy_helper.from_array(state["linear.bias"].astype(np.float32), "linear_b")]
    nodes += [
        helper.make_node("Squeeze", [f"h{LAYERS - 1}", "axis0"], ["last"]),
        helper.make_node("Gemm", ["last", "linear_w", "linear_b"], ["linear"], transB=1),
        helper.make_node("Relu", ["linear"], ["positive"]),
        helper.make_node("LpNormalization", ["positive"], ["embeddings"], axis=1, p=2),
    ]
    graph = helper.make_graph(
        nodes, "resemblyzer_voice_encoder",
        [helper.make_tensor_value_info("mels", TensorProto.FLOAT, ["batch", "frames", 40])],
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["batch", HIDDEN])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              doc_string="Resemblyzer 0.1.4 VoiceEncoder (GE2E), Apache-2.0, converted by "
                                         "hushscribe tools/convert_speaker_encoder.py")
    model.ir_version = 8  # readable by onnxruntime ≥ 1.16
    onnx.checker.check_model(model)
    return model


def check_against_resemblyzer(path: Path, clip: Path | None) -> None:
    """Our mel + ONNX encoder against Resemblyzer's own (librosa + torch) on random audio and on `clip`."""
    import torch
    from resemblyzer import VoiceEncoder
    from resemblyzer.audio import wav_to_mel_spectrogram

    sys.path.insert(0, str(REPO / "src"))
    from hushscribe import speakers

    encoder = VoiceEncoder("cpu", verbose=False)
    noise = np.random.default_rng(0).normal(0, 0.1, 16000 * 5).astype(np.float32)
    ours_mel, their_mel = speakers.mel_power(noise), wav_to_mel_spectrogram(noise)
    print("mel frames", ours_mel.shape, their_mel.shape,
          "max relative difference", float(np.max(np.abs(ours_mel - their_mel)) / np.max(their_mel)))
    mels = np.stack([their_mel[i:i + 160] for i in range(0, len(their_mel) - 160, 77)])
    with torch.no_grad():
        reference = encoder(torch.from_numpy(mels)).numpy()
    ours = speakers.SpeakerEncoder(path).embed(mels)
    print("encoder max abs difference", float(np.max(np.abs(ours - reference))))
    if clip is not None:
        from hushscribe.audio import decode

        samples = decode(clip)
        mel = wav_to_mel_spectrogram(samples)
        starts = np.arange(0, len(mel) - 160, 77)
        with torch.no_grad():
            reference = encoder(torch.from_numpy(np.stack([mel[i:i + 160] for i in starts]))).numpy()
        out = REPO / "tests" / "data" / "speaker_reference.npz"
        np.savez(out, starts=starts, embeddings=reference.astype(np.float32))
        print("wrote", out, reference.shape)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel", type=Path)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--check", action="store_true", help="compare with Resemblyzer (needs torch, librosa)")
    parser.add_argument("--clip", type=Path, help="with --check: write tests/data/speaker_reference.npz from it")
    args = parser.parse_args()
    data = args.wheel.read_bytes()
    if hashlib.sha256(data).hexdigest() != WHEEL_SHA256:
        sys.exit(f"{args.wheel} is not the Resemblyzer 0.1.4 wheel (sha256 differs)")
    with zipfile.ZipFile(io.BytesIO(data)) as wheel:
        state = load_legacy_checkpoint(wheel.read(CHECKPOINT))
    import onnx

    onnx.save(build_onnx(state), args.output)
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes)")
    weights = args.output.with_suffix(".npz")
    np.savez(weights, **{name: array.astype(np.float32) for name, array in state.items()
                         if name.startswith(("lstm.", "linear."))})
    print(f"wrote {weights} ({weights.stat().st_size} bytes)")
    if args.check:
        check_against_resemblyzer(args.output, args.clip)


if __name__ == "__main__":
    main()
