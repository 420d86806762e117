"""Word timings for a segment's text: Qwen3-ForcedAligner-0.6B through the native transformers classes.

The aligner reads the audio and the words (Chinese per character, other languages per word, punctuation dropped),
each word followed by two `<timestamp>` slots, and in one forward pass (no decoding) classifies every slot into an
80 ms bin of the segment. Timings come back as Words whose text is the segment's own (punctuation kept), one per
aligned word, monotonic, inside the segment and never zero-length.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from hushscribe.audio import SAMPLE_RATE
from hushscribe.engines.qwen_attention import use_fast_attention
from hushscribe.errors import HushError
from hushscribe.transcript import Word
from hushscribe.words import tidied, word_texts

# Languages the aligner was trained on that its word splitter handles without extra packages (Japanese and Korean
# need nagisa and soynlp: their text is aligned as the default splitter cuts it, like any other language).
ALIGNER_LANGUAGES = frozenset("zh yue en fr de it pt ru es".split())
MAX_ALIGN_S = 300.0  # the longest audio the aligner was trained for; our segments are at most 30 s
# Seconds of audio aligned in one forward pass (a 30 s segment is ~390 audio tokens plus ~3 tokens a word)
BATCH_AUDIO_S = {"cuda": 600.0, "cpu": 120.0}  # an hour on an H200 took 1.61 s at 300, 1.51 at 600, 1.52 at 1200


class QwenAligner:
    """Loaded once (by the Qwen engine, on first use); `align` times the words of many segments in batches."""

    def __init__(self, folder: Path, device, dtype) -> None:
        import transformers
        from transformers import AutoModelForTokenClassification, AutoProcessor

        if not hasattr(transformers, "Qwen3ASRForTokenClassification"):
            raise HushError(f"transformers {transformers.__version__} cannot run Qwen3-ForcedAligner; upgrade it "
                            "(pip install -U transformers) to time Qwen3-ASR's words")
        try:
            self.processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
            self.model = AutoModelForTokenClassification.from_pretrained(
                folder, dtype=dtype, local_files_only=True, attn_implementation="sdpa").to(device).eval()
        except (OSError, ValueError) as exc:
            raise HushError(f"cannot load Qwen3-ForcedAligner from {folder}: {str(exc).splitlines()[0]}") from None
        if self.model.config.num_labels <= 2:  # a recognition model read as a classifier: no timestamp classes
            raise HushError(f"{folder} is not a Qwen3-ForcedAligner (it has no timestamp classes); give the folder "
                            "of Qwen3-ForcedAligner-0.6B-hf, not of a recognition model")
        use_fast_attention(self.model)  # the encoder's windows in one call, as for recognition
        self.device, self.dtype = device, dtype
        self.bin_s = float(self.processor.timestamp_segment_time) / 1000.0
        self.batch_audio_s = BATCH_AUDIO_S["cuda" if device.type == "cuda" else "cpu"]

    def align(self, segments: list[np.ndarray], texts: list[tuple[str, str | None]]) -> list[list[Word] | None]:
        """For each segment (16 kHz mono) and its (text, language): its words with times relative to the segment;
        None for one with nothing to align (no letters or digits) or longer than MAX_ALIGN_S. A thread prepares
        the next batch's inputs (features, tokens) while the model runs on this one."""
        from concurrent.futures import ThreadPoolExecutor

        results: list[list[Word] | None] = [None] * len(segments)
        batches = self._batches(segments, texts)
        with ThreadPoolExecutor(1, thread_name_prefix="hushscribe-aligner") as preparing:
            prepared = [preparing.submit(self._inputs, [segments[i] for i in batch], [texts[i] for i in batch])
                        for batch in batches]
            for batch, inputs in zip(batches, prepared):
                for i, words in zip(batch, self._aligned([segments[i] for i in batch], [texts[i] for i in batch],
                                                         *inputs.result())):
                    results[i] = words
        return results

    def _batches(self, segments: list[np.ndarray], texts: list[tuple[str, str | None]]) -> list[list[int]]:
        """The segments with something to align, in batches of at most batch_audio_s, similar lengths together."""
        todo = [i for i, (audio, (text, _)) in enumerate(zip(segments, texts, strict=True))
                if self.processor.split_words_for_alignment(text) and len(audio) / SAMPLE_RATE <= MAX_ALIGN_S]
        todo.sort(key=lambda i: len(segments[i]), reverse=True)  # less padding
        batches, seconds = [], math.inf
        for i in todo:
            if seconds + len(segments[i]) / SAMPLE_RATE > self.batch_audio_s:
                batches.append([])
                seconds = 0.0
            batches[-1].append(i)
            seconds += len(segments[i]) / SAMPLE_RATE
        return batches

    def _inputs(self, segments: list[np.ndarray], texts: list[tuple[str, str | None]]):
        """The model's inputs (on the CPU) and each segment's aligned tokens."""
        languages = [language if language in ALIGNER_LANGUAGES else None for _, language in texts]
        inputs, tokens = self.processor.prepare_forced_aligner_inputs(
            list(segments), [text for text, _ in texts], language=languages)
        inputs.pop("num_audio_tokens", None)
        return inputs, tokens

    def _aligned(self, segments: list[np.ndarray], texts: list[tuple[str, str | None]], inputs,
                 tokens: list[list[str]]) -> list[list[Word]]:
        import torch

        inputs = inputs.to(self.device)
        inputs["input_features"] = inputs["input_features"].to(self.dtype)
        durations = [len(audio) / SAMPLE_RATE for audio in segments]
        slot = self.model.config.timestamp_token_id
        slots = inputs["input_ids"] == slot
        with torch.inference_mode():
            logits = self.model(**inputs).logits
            # only the slots are read, each over the bins inside its segment: one small copy to the CPU
            bins = torch.tensor([int(d / self.bin_s) + 1 for d in durations], device=self.device)
            widest = int(bins.max())
            picked = logits[:, :, :widest][slots].float()
            rows = slots.nonzero()[:, 0]
            picked[torch.arange(widest, device=self.device)[None, :] >= bins[rows][:, None]] = -math.inf
            per_row = picked.cpu().split(slots.sum(dim=1).tolist())
        aligned = []
        for row_logits, duration, (text, _), row_tokens in zip(per_row, durations, texts, tokens):
            found = self.processor.decode_forced_alignment(
                row_logits[None], torch.full(row_logits.shape[:1], slot)[None], [row_tokens], slot,
                self.bin_s * 1000)[0]
            words = [Word(w["start_time"], w["end_time"], piece)
                     for w, piece in zip(found, word_texts(text, row_tokens))]
            aligned.append(tidied(words, duration))
        return aligned
