"""Word timings for Qwen3-ASR from Qwen3-ForcedAligner, loaded the user's way (--aligner FOLDER) from a tiny random
checkpoint the tests build. Random weights put words anywhere: these tests hold the aligner to its contract (one
timing per word, in order, inside its segment, never zero-length, the words together are the text), not to
accuracy, which only the real weights have."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from .conftest import QWEN_MISSING
from .test_words import keeps_the_contract

torch = pytest.importorskip("torch", reason=QWEN_MISSING)
pytest.importorskip("transformers", reason=QWEN_MISSING)

from hushscribe import HushError, Transcriber  # noqa: E402
from hushscribe.audio import SAMPLE_RATE, decode  # noqa: E402
from hushscribe.engines.batching import BatchingEngine  # noqa: E402
from hushscribe.engines.qwen import QwenEngine  # noqa: E402
from hushscribe.options import OptionError  # noqa: E402
from hushscribe.words import tidy_times  # noqa: E402


@pytest.fixture(scope="module")
def engine(tiny_qwen, tiny_aligner):
    return QwenEngine(tiny_qwen, device="cpu", aligner=tiny_aligner)


def squeezed(text: str) -> str:
    return "".join(text.split())


def assert_timed(transcript, splitter) -> None:
    assert transcript.segments
    for segment in transcript.segments:
        words = segment.words
        assert words is not None and len(words) == len(splitter(segment.text)), segment  # one timing per word
        assert squeezed("".join(w.text for w in words)) == squeezed(segment.text)  # the words are the text
        relative = [(w.start - segment.start, w.end - segment.start) for w in words]
        assert keeps_the_contract(relative, segment.end - segment.start + 1e-3), segment


@pytest.mark.parametrize("name,language", [("jfk", "en"), ("laoxu_conversational", "zh"), ("gd0046360", "yue")])
def test_every_word_is_timed_in_order_inside_its_segment(engine, clip, name, language):
    transcript = Transcriber(engine).transcribe(clip(name)["path"], language=language, word_timestamps=True,
                                                script="traditional" if language == "yue" else None)
    assert_timed(transcript, engine._aligner.processor.split_words_for_alignment)


def test_the_aligner_reads_the_official_layout(engine):
    engine.align([np.zeros(SAMPLE_RATE, np.float32)], [("Hello, world.", "en")])  # loads it
    processor = engine._aligner.processor
    inputs, words = processor.prepare_forced_aligner_inputs([np.zeros(SAMPLE_RATE, np.float32)], ["你好, world"],
                                                            language=["zh"])
    prompt = processor.tokenizer.decode(inputs["input_ids"][0])
    assert words == [["你", "好", "world"]]
    assert prompt.startswith("<|audio_start|><|audio_pad|>") and prompt.endswith(
        "<|audio_end|>你<timestamp><timestamp>好<timestamp><timestamp>world<timestamp><timestamp>")


def test_reading_only_the_slots_gives_what_the_library_decodes_from_all_logits(engine, clip):
    samples = decode(clip("jfk")["path"])
    segments = [samples[:3 * SAMPLE_RATE], samples[3 * SAMPLE_RATE:11 * SAMPLE_RATE]]  # unequal: padded
    texts = [("And so my fellow Americans", "en"), ("ask not what your country can do for you", "en")]
    found = engine.align(segments, texts)
    aligner = engine._aligner
    inputs, tokens = aligner.processor.prepare_forced_aligner_inputs(segments, [t for t, _ in texts], language="en")
    inputs.pop("num_audio_tokens", None)
    with torch.inference_mode():
        logits = aligner.model(**inputs).logits
    for row, (audio, timed) in enumerate(zip(segments, found)):
        bins = int(len(audio) / SAMPLE_RATE / aligner.bin_s) + 1
        library = aligner.processor.decode_forced_alignment(
            logits[row:row + 1, :, :bins], inputs["input_ids"][row:row + 1], tokens[row:row + 1],
            aligner.model.config.timestamp_token_id)
        expected = tidy_times([(w["start_time"], w["end_time"]) for w in library[0]], len(audio) / SAMPLE_RATE)
        assert [(w.start, w.end) for w in timed] == expected


def test_segments_without_words_to_time_get_none(engine):
    silence = np.zeros(SAMPLE_RATE, np.float32)
    assert engine.align([silence, silence], [("", "en"), ("...", None)]) == [None, None]


def test_the_shared_queue_times_words_as_the_engine_does(engine, clip):
    samples = decode(clip("jfk")["path"])
    segments, texts = [samples[:5 * SAMPLE_RATE], samples[5 * SAMPLE_RATE:]], [("And so my fellow", "en"),
                                                                                 ("Americans ask not", "en")]
    assert BatchingEngine(engine).align(segments, texts) == engine.align(segments, texts)


def test_without_an_aligner_word_timings_are_refused_with_the_download_command(tiny_qwen, tmp_path, monkeypatch,
                                                                              clip):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(OptionError, match="models download qwen3-forcedaligner-0.6b"):
        Transcriber(QwenEngine(tiny_qwen, device="cpu")).transcribe(clip("jfk")["path"], word_timestamps=True)
    result = subprocess.run([sys.executable, "-m", "hushscribe", "transcribe", str(clip("jfk")["path"]), "--engine",
                             "qwen", "--model", str(tiny_qwen), "--word-timestamps"], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "HF_HUB_CACHE": str(tmp_path)})
    assert result.returncode == 2 and "qwen3-forcedaligner-0.6b" in result.stderr and "Traceback" not in result.stderr
    result = subprocess.run([sys.executable, "-m", "hushscribe", "transcribe", str(clip("jfk")["path"]), "--engine",
                             "qwen", "--model", str(tiny_qwen), "--aligner", str(tmp_path / "none")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "not a Qwen3-ForcedAligner folder" in result.stderr
    with pytest.raises(HushError, match="not a Qwen3-ForcedAligner"):  # the recognition model given as the aligner
        QwenEngine(tiny_qwen, device="cpu", aligner=tiny_qwen).align([np.zeros(SAMPLE_RATE, np.float32)],
                                                                     [("hello", "en")])


def test_cli_writes_word_timings_to_json_and_cuts_subtitles_at_words(tiny_qwen, tiny_aligner, clip, tmp_path):
    path = clip("jfk")["path"]
    result = subprocess.run([sys.executable, "-m", "hushscribe", "transcribe", str(path), "--engine", "qwen",
                             "--model", str(tiny_qwen), "--aligner", str(tiny_aligner), "--word-timestamps",
                             "-l", "en", "-f", "json,srt", "-o", str(tmp_path), "-q"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / f"{path.stem}.json").read_text())
    words = [w for s in data["segments"] for w in s["words"]]
    assert words and all({"start", "end", "text", "probability"} <= set(w) for w in words)
    starts = {round(w["start"], 3) for w in words}
    cue_starts = [line.split(" --> ")[0] for line in (tmp_path / f"{path.stem}.srt").read_text().splitlines()
                  if " --> " in line]
    assert cue_starts and all(round(_seconds(start), 3) in starts for start in cue_starts)  # each cue at a word


def _seconds(stamp: str) -> float:
    hours, minutes, rest = stamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(rest.replace(",", "."))
