"""The Qwen3-ASR engine, loaded the user's way (--model PATH) from a tiny random checkpoint that the
tests build. Random weights speak nonsense, so these tests assert mechanics, not accuracy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .conftest import QWEN_MISSING

torch = pytest.importorskip("torch", reason=QWEN_MISSING)
pytest.importorskip("transformers", reason=QWEN_MISSING)

from hushscribe import HushError, Transcriber  # noqa: E402
from hushscribe.audio import SAMPLE_RATE, decode  # noqa: E402
from hushscribe.engines import load_engine  # noqa: E402
from hushscribe.engines import qwen as qwen_module  # noqa: E402
from hushscribe.engines.base import RecognitionOptions  # noqa: E402
from hushscribe.engines.qwen import QwenEngine, parse_output  # noqa: E402
from hushscribe.models import resolve_qwen  # noqa: E402
from hushscribe.transcript import FLAG_TOKEN_CAP  # noqa: E402

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="session", params=DEVICES)
def engine(tiny_qwen, request):
    """The engine on the CPU, and on CUDA too where there is a GPU (float32: see the compiled test)."""
    if request.param == "cpu":
        return QwenEngine(tiny_qwen, device="cpu")
    return QwenEngine(tiny_qwen, device="cuda", dtype="float32")


def test_cli_transcribes_with_a_local_model_folder(tiny_qwen, clip, tmp_path):
    row = clip("leopard_3speaker")
    result = subprocess.run(
        [sys.executable, "-m", "hushscribe", "transcribe", str(row["path"]), "--engine", "qwen", "--model",
         str(tiny_qwen), "-f", "json,srt", "-o", str(tmp_path), "-q"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / f"{row['path'].stem}.json").read_text())
    assert data["engine"] == "qwen" and data["model"] == str(tiny_qwen)
    segments = data["segments"]
    assert segments and all(s["text"] for s in segments)
    starts = [s["start"] for s in segments]
    assert starts == sorted(starts) and starts[0] < 2.0 and segments[-1]["end"] <= data["duration"] + 1e-6
    # the segments cover the speech: together at least 80 % of this 19.8 s clip
    assert sum(s["end"] - s["start"] for s in segments) > 0.8 * data["duration"]


@pytest.mark.parametrize("language,name", [("yue", "Cantonese"), ("zh", "Chinese"), ("en", "English")])
def test_forced_language_reaches_the_prompt(engine, language, name):
    inputs = engine.inputs([np.zeros(SAMPLE_RATE, np.float32)], RecognitionOptions(language=language))
    prompt = engine.processor.tokenizer.decode(inputs["input_ids"][0])
    assert prompt.endswith(f"<|im_start|>assistant\nlanguage {name}<asr_text>")


def test_unforced_prompt_ends_at_the_generation_prompt(engine):
    inputs = engine.inputs([np.zeros(SAMPLE_RATE, np.float32)], RecognitionOptions())
    prompt = engine.processor.tokenizer.decode(inputs["input_ids"][0])
    assert prompt.startswith("<|im_start|>system\n<|im_end|>") and prompt.endswith("<|im_start|>assistant\n")


def test_context_goes_to_the_system_turn_and_never_into_the_text(engine, clip):
    context = "Quetzalcoatl Zanzibar"
    inputs = engine.inputs([np.zeros(SAMPLE_RATE, np.float32)], RecognitionOptions(context=context))
    assert engine.processor.tokenizer.decode(inputs["input_ids"][0]).startswith(
        f"<|im_start|>system\n{context}<|im_end|>")
    transcript = Transcriber(engine).transcribe(clip("jfk")["path"], language="en", context=context)
    assert transcript.text and "Quetzalcoatl" not in transcript.text and "Zanzibar" not in transcript.text


def test_audio_placeholder_expands_to_the_encoder_length(engine):
    thirty = np.zeros(30 * SAMPLE_RATE, np.float32)
    inputs = engine.inputs([thirty], RecognitionOptions(language="en"))
    assert int((inputs["input_ids"] == engine.model.config.audio_token_id).sum()) == 390
    assert inputs["input_features"].shape[-1] % 100 == 0


@pytest.mark.parametrize("language, context", [("en", ""), (None, ""), ("yue", "Dr. Chan, 七牛")])
def test_inputs_are_what_the_processor_builds(engine, manifest, language, context):
    """Our batched inputs (prompt tokenized once, log-mel on the model's device) equal the processor's own
    transcription request, for a batch of lengths around its edges: under its 0.5 s minimum, whole and
    partial encoder chunks, 30 s."""
    from hushscribe.engines.qwen_inputs import audio_tokens

    audio = decode(manifest[0]["path"])
    lengths = [30 * SAMPLE_RATE, 7 * SAMPLE_RATE + 123, SAMPLE_RATE, 16_160, SAMPLE_RATE // 4]
    batch = [np.resize(audio, n) for n in lengths]
    ours = engine.inputs(batch, RecognitionOptions(language=language, context=context))
    library = engine.processor.apply_transcription_request(batch, language=language, prompt=context)
    for key in ("input_ids", "attention_mask", "input_features_mask"):
        assert ours[key].cpu().tolist() == library[key].tolist(), key
    torch.testing.assert_close(ours["input_features"].float().cpu(), library["input_features"].float(),
                               rtol=0, atol=1e-4 if engine.dtype == torch.float32 else 2e-2)
    frames = library["input_features_mask"].sum(-1).tolist()
    placeholders = (library["input_ids"] == engine.processor.audio_token_id).sum(-1).tolist()
    assert [audio_tokens(n) for n in frames] == placeholders


def test_a_segment_that_hits_the_token_cap_is_flagged(engine, clip, monkeypatch):
    monkeypatch.setattr(engine, "side_by_side", False)  # one segment, one budget (not pieces, each with one)
    monkeypatch.setattr(qwen_module, "TOKENS_BASE", 3)
    monkeypatch.setattr(qwen_module, "TOKENS_PER_SECOND", 0)
    transcript = Transcriber(engine).transcribe(clip("jfk")["path"], language="en")
    assert transcript.segments and all(FLAG_TOKEN_CAP in s.flags for s in transcript.segments)
    ids = engine.processor.tokenizer(transcript.segments[0].text)["input_ids"]
    assert len(ids) <= 3
    assert json.loads(json.dumps(transcript.to_dict()))["segments"][0]["flags"] == [FLAG_TOKEN_CAP]


def test_out_of_memory_halves_the_batch_and_loses_nothing(engine, manifest, monkeypatch):
    # equal lengths: a batch's token budget follows its longest segment, and random weights never stop early
    segments = [decode(r["path"])[: 8 * SAMPLE_RATE] for r in manifest if r["duration_s"] > 8][:7]
    options = RecognitionOptions(language="en")
    engine.batch_size = 1
    one_by_one = [r.text for r in engine.recognize(segments, options)]

    real_generate = engine._generate
    sizes = []

    def generate_with_little_memory(batch, opts):
        sizes.append(len(batch))
        if len(batch) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_generate(batch, opts)

    monkeypatch.setattr(engine, "_generate", generate_with_little_memory)
    engine.batch_size = 8
    batched = [r.text for r in engine.recognize(segments, options)]
    assert sizes[:3] == [7, 4, 2] and engine.batch_size == 2
    assert batched == one_by_one  # every segment back, in its own place


def test_unforced_each_segment_keeps_the_language_the_model_names(engine, clip, monkeypatch):
    """No language asked for: the prompt leaves the language to the model, and each segment keeps the one it
    wrote (random weights write nonsense, so the decoded text is stood in for by what a real model writes)."""
    gap = np.zeros(3 * SAMPLE_RATE, np.float32)
    recording = np.concatenate([decode(clip("jfk")["path"]), gap, decode(clip("aishell1")["path"])])
    said = iter(["language English<asr_text>Ask not.", "language Chinese<asr_text>甚至出现交易几乎停滞的情况"])
    monkeypatch.setattr(engine.processor.tokenizer, "decode", lambda ids, **kwargs: next(said))
    monkeypatch.setattr(engine, "batch_size", 1)  # one segment per call: the stand-in answers in order
    transcript = Transcriber(engine).transcribe(recording)
    assert [(s.language, s.text) for s in transcript.segments] == [("en", "Ask not."),
                                                                   ("zh", "甚至出现交易几乎停滞的情况")]
    assert transcript.language == "en" and transcript.languages == ["en", "zh"]


@pytest.mark.parametrize("raw,forced,expected", [
    ("language Cantonese<asr_text>你好呀", None, ("yue", "你好呀")),
    ("language English<asr_text> Hello there.", None, ("en", "Hello there.")),
    ("language None<asr_text>", None, (None, "")),
    ("just text", None, (None, "just text")),
    (" 你好", "zh", ("zh", "你好")),
])
def test_model_output_is_parsed(raw, forced, expected):
    assert parse_output(raw, forced) == expected


def test_missing_weights_name_the_download_command(tmp_path, monkeypatch, clip):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(HushError, match="hushscribe models download qwen3-asr-1.7b"):
        resolve_qwen("Qwen/Qwen3-ASR-1.7B-hf")
    with pytest.raises(HushError, match="neither a model folder"):
        resolve_qwen(str(tmp_path / "no-such-folder"))
    result = subprocess.run([sys.executable, "-m", "hushscribe", "transcribe", str(clip("jfk")["path"]), "--engine",
                             "qwen"], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "HF_HUB_CACHE": str(tmp_path)})
    assert result.returncode == 2 and "models download" in result.stderr and "Traceback" not in result.stderr


def test_hub_is_offline_after_import():
    import os

    import hushscribe  # noqa: F401

    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["HF_HUB_DISABLE_TELEMETRY"] == "1"


def test_auto_engine_is_whisper_without_a_gpu(tiny_qwen):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: auto would rightly pick Qwen")
    assert load_engine("auto", model=None).name == "whisper"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fused_decode_step_gives_the_same_transcript_as_the_plain_one(tiny_qwen, clip):
    """torch.compile's fused step against the plain step, both as CUDA graphs.
    float32: random weights leave near-ties between tokens that bf16 rounding would flip."""
    eager = Transcriber(QwenEngine(tiny_qwen, device="cuda", compile=False, dtype="float32"))
    from torch._dynamo.utils import counters

    fused = QwenEngine(tiny_qwen, device="cuda", dtype="float32")
    fused.fuse()
    compiled, graphs = Transcriber(fused), counters["stats"]["unique_graphs"]
    for name in ("jfk", "leopard_3speaker", "aishell1"):  # aishell1: one segment, a prefill of one row
        audio = decode(clip(name)["path"])
        a, b = eager.transcribe(audio, language="en"), compiled.transcribe(audio, language="en")
        assert [s.text for s in a.segments] == [s.text for s in b.segments]
    # what fuse() compiled serves every batch size and length, one row and one new token included
    assert counters["stats"]["unique_graphs"] == graphs


def test_fuse_policy_compiles_once_the_plain_step_has_lost_a_compile(tmp_path, monkeypatch):
    """Ski rental: no compile while the time the plain step lost (FUSED_SAVING of its decode time) is
    below what a compile costs here; that cost is the cold guess until one is timed, then the timing
    kept in hushscribe's cache folder, which a new process reads."""
    from hushscribe.engines import qwen_decode

    monkeypatch.setenv("HUSHSCRIBE_CACHE", str(tmp_path))
    policy = qwen_decode.FusePolicy("model A")
    assert policy.compile_s() == qwen_decode.COLD_COMPILE_S
    policy.record(30.0)  # a 30 s clip decodes in well under a second: a short job never gets here
    assert not policy.due()
    policy.record(qwen_decode.COLD_COMPILE_S / qwen_decode.FUSED_SAVING - 30.0)
    assert policy.due()
    policy.compiled(12.3)
    assert json.loads((tmp_path / "torch-compile" / "compile-seconds.json").read_text()) == {"model A": 12.3}
    again = qwen_decode.FusePolicy("model A")
    assert again.compile_s() == 12.3 and qwen_decode.FusePolicy("model B").compile_s() == qwen_decode.COLD_COMPILE_S
    again.record(12.3 / qwen_decode.FUSED_SAVING * 0.99)
    assert not again.due()


def test_a_cache_folder_that_cannot_be_written_leaves_compiling_to_the_private_folder(tmp_path):
    """torch.compile fails where its cache folder cannot be made: with hushscribe's unwritable, the compile
    caches move to the process's private folder (with a warning), a compile works, and its timing is not kept."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder should be")
    code = """
import os, torch
import hushscribe
from hushscribe.engines import qwen_decode
qwen_decode.compile_caches_writable()
doubled = torch.compile(lambda x: x * 2 + 1)(torch.ones(3))
qwen_decode.FusePolicy("model").compiled(1.0)
print(doubled.tolist(), os.environ["TORCHINDUCTOR_CACHE_DIR"])
"""
    env = {**os.environ, "HUSHSCRIBE_CACHE": str(blocker / "cache"), "HUSHSCRIBE_TMPDIR": str(tmp_path / "tmp")}
    for name in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"):
        env.pop(name, None)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    values, folder = result.stdout.split("] ")
    assert values == "[3.0, 3.0, 3.0" and Path(folder.strip()).is_relative_to(tmp_path / "tmp")
    assert "cannot be written" in result.stderr and "HUSHSCRIBE_CACHE" in result.stderr


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_fresh_process_compiles_only_when_it_pays_and_keeps_the_artefacts(tiny_qwen, clip, tmp_path):
    """A short job in a fresh CLI process never compiles; one whose compile is known to cost nothing
    compiles after its first batch, and Inductor's artefacts stay in the cache folder (not in the
    private temporary folder, removed at exit), with the measured compile time beside them."""
    engine = QwenEngine(tiny_qwen, device="cuda", dtype="float32")
    key = engine._compile_key()
    cache = tmp_path / "cache"
    compile_dir = cache / "torch-compile"
    env = {**os.environ, "HUSHSCRIBE_CACHE": str(cache), "HUSHSCRIBE_TMPDIR": str(tmp_path / "tmp")}
    for env_name in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"):
        env.pop(env_name, None)

    def transcribe(out):
        result = subprocess.run([sys.executable, "-m", "hushscribe", "transcribe", str(clip("jfk")["path"]),
                                 "--engine", "qwen", "--model", str(tiny_qwen), "-f", "json", "-o", str(out), "-q"],
                                capture_output=True, text=True, timeout=600, env=env)
        assert result.returncode == 0, result.stderr
        assert json.loads(next(out.glob("*.json")).read_text())["segments"]

    transcribe(tmp_path / "short")
    assert not (compile_dir / "compile-seconds.json").exists() and not list(compile_dir.rglob("*.py"))
    compile_dir.mkdir(parents=True, exist_ok=True)
    (compile_dir / "compile-seconds.json").write_text(json.dumps({key: 0.0}))
    transcribe(tmp_path / "fused")
    assert any((compile_dir / "inductor").rglob("*.py")), "no compiled kernels in the cache folder"
    assert json.loads((compile_dir / "compile-seconds.json").read_text())[key] > 0.0
    assert list((tmp_path / "tmp").glob("hushscribe-*")) == []


def test_own_greedy_decoder_matches_transformers_generate(engine, manifest):
    """The static-cache decode loop (on a GPU a CUDA graph, attending through the split-KV kernel) gives
    generate()'s tokens exactly, for a left-padded batch of clips of different lengths. (Same batch on both
    sides: a different batch size changes the last bits of the sums, and random weights leave near-ties.)"""
    from hushscribe.engines.qwen_decode import bucket

    segments = sorted((decode(r["path"]) for r in manifest[:5]), key=len, reverse=True)
    options = RecognitionOptions(language="en")
    # five rows in a graph of eight: the other three decode idle and change nothing
    idle = [r.text for r in engine._generate(segments, options)]
    segments += [segments[-1]] * (bucket(len(segments)) - len(segments))
    ours = [r.text for r in engine._generate(segments, options)]
    inputs = engine.inputs(segments, options)
    budget = qwen_module.max_new_tokens(len(segments[0]) / SAMPLE_RATE)
    text_config = engine.model.config.text_config
    ours_attention, text_config._attn_implementation = text_config._attn_implementation, "sdpa"
    try:  # the reference runs the library's own attention too
        with torch.inference_mode():
            out = engine.model.generate(**inputs, max_new_tokens=budget, do_sample=False)
    finally:
        text_config._attn_implementation = ours_attention
    assert ours == [engine._parse(ids, "en").text for ids in out[:, inputs["input_ids"].shape[1]:].tolist()]
    assert idle == ours[:5]


KERNELS_CHECK = """
import torch
from hushscribe.engines.qwen_kernels import decode_attention
torch.manual_seed(0)
device, dtype = ("cuda", torch.bfloat16) if torch.cuda.is_available() else ("cpu", torch.float32)
for batch, slots, newest in ((2, 768, 700), (128, 768, 450), (3, 128, 127)) if device == "cuda" else \
        ((2, 256, 200), (8, 192, 63), (3, 128, 127)):
    query = torch.randn(batch, 8, 2, 128, device=device, dtype=dtype)
    keys, values = (torch.randn(batch, 8, slots, 128, device=device, dtype=dtype) for _ in range(2))
    # the new token's keys and values as the decoder hands them over: (batch, kv_heads, 1, dim) laid out as
    # (batch, 1, kv_heads, dim), the values a slice of the joined q/k/v projection
    key = torch.randn(batch, 1, 8, 128, device=device, dtype=dtype).transpose(1, 2)
    value = torch.randn(batch, 1, 40, 128, device=device, dtype=dtype)[:, :, 24:32].transpose(1, 2)
    expected_keys, expected_values = keys.clone(), values.clone()
    expected_keys[:, :, newest], expected_values[:, :, newest] = key[:, :, 0], value[:, :, 0]
    starts = torch.randint(0, newest // 2, (batch,), device=device, dtype=torch.int32)
    ours = decode_attention(query, key, value, keys, values, starts, torch.tensor([newest], device=device),
                            128 ** -0.5)
    assert torch.equal(keys, expected_keys) and torch.equal(values, expected_values)
    slot = torch.arange(slots, device=device)
    seen = (slot[None] >= starts[:, None]) & (slot[None] <= newest)
    library = torch.nn.functional.scaled_dot_product_attention(query, keys, values, attn_mask=seen[:, None, None],
                                                                 scale=128 ** -0.5)
    tolerance = 2e-2 if dtype == torch.bfloat16 else 1e-5
    torch.testing.assert_close(ours.float(), library.float(), rtol=tolerance, atol=tolerance)
from hushscribe.engines.qwen_decode import prefill_mask
from hushscribe.engines.qwen_kernels import prefill_attention
for batch, length in ((3, 150), (2, 64)) if device == "cpu" else ((3, 150), (120, 414), (2, 64)):
    starts = torch.randint(0, length // 2, (batch,), device=device, dtype=torch.int32)
    starts[0] = 0
    valid = torch.arange(length, device=device)[None] >= starts[:, None]
    # the layouts the decoder hands over: queries (batch, heads, T, dim) laid out as (batch, T, heads, dim),
    # keys and values the first T slots of a longer cache
    query = torch.randn(batch, length, 16, 128, device=device, dtype=dtype).transpose(1, 2)
    keys, values = (torch.randn(batch, 8, length + 40, 128, device=device, dtype=dtype) for _ in range(2))
    ours = prefill_attention(query, keys[:, :, :length], values[:, :, :length], starts, 128 ** -0.5)
    library = torch.nn.functional.scaled_dot_product_attention(
        query, keys[:, :, :length].repeat_interleave(2, 1), values[:, :, :length].repeat_interleave(2, 1),
        attn_mask=prefill_mask(valid), scale=128 ** -0.5)
    tolerance = 2e-2 if dtype == torch.bfloat16 else 1e-5
    torch.testing.assert_close(ours.float(), library.float(), rtol=tolerance, atol=tolerance)
from hushscribe.engines.qwen_encoder import _padded_windows
from hushscribe.engines.qwen_kernels import window_attention
lengths = [104, 104, 37, 104, 1, 90] * (1 if device == "cpu" else 100)
bounds = torch.tensor([0, *lengths], device=device).cumsum(0, dtype=torch.int32)
q, k, v = torch.randn(sum(lengths), 3, 16, 64, device=device, dtype=dtype).unbind(1)  # as the encoder's q/k/v
ours = window_attention(q, k, v, bounds, max(lengths))
library = _padded_windows(bounds, max(lengths))(q, k, v)
torch.testing.assert_close(ours.float(), library.float(), rtol=tolerance, atol=tolerance)
print("ok")
"""


def test_attention_kernels_match_sdpa_with_the_same_masks():
    """The decode kernel (the new token's keys and values written into the newest slot; each row's slots from
    its first real one to the newest, several splits combined), the prefill kernel (causal from each row's first
    real position, padding seeing itself) and the encoder's window kernel against SDPA with those masks: on a GPU
    in bf16 (up to the hour's 120 rows of 414), elsewhere in Triton's interpreter."""
    pytest.importorskip("triton", reason="needs Triton (bundled with torch's CUDA builds)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    if not torch.cuda.is_available():
        env["TRITON_INTERPRET"] = "1"
    result = subprocess.run([sys.executable, "-c", KERNELS_CHECK], capture_output=True, text=True, env=env,
                            timeout=600)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


def test_own_audio_encoder_matches_the_library_encoder(engine, manifest):
    """Our encoder forward (chunks of padding left out, the windows attended in one call, q/k/v joined) gives
    the library's get_audio_features, for a batch of clips of different lengths (several windows each)."""
    seconds = (20, 17, 9)
    segments = [np.resize(decode(r["path"]), s * SAMPLE_RATE) for r, s in zip(manifest, seconds)]
    segments.append(np.zeros(SAMPLE_RATE // 2, np.float32))
    inputs = engine.inputs(segments, RecognitionOptions(language="en"))
    audio_config = engine.model.config.audio_config
    audio_config._attn_implementation = "sdpa"  # the library's own: one SDPA call per window
    with torch.inference_mode():
        ours = engine._encoder(inputs["input_features"], inputs["input_features_mask"])
        library = engine.model.model.get_audio_features(
            inputs["input_features"], inputs["input_features_mask"], return_dict=True).pooler_output
    assert ours.shape == library.shape and ours.shape[0] > 5 * 104  # over five 8 s windows
    torch.testing.assert_close(ours, library, rtol=1e-4, atol=1e-4)
