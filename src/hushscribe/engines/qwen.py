"""Qwen3-ASR through the native transformers classes (Qwen3ASRForConditionalGeneration, ≥ 5.13).

Weights load from a local folder or the Hugging Face cache only (see models.resolve_qwen). The
prompt is the official layout: the system turn holds the context (hotwords), the user turn one
audio item, and a forced language is written after the generation prompt as
`language <Name><asr_text>`; unforced, the model writes that prefix itself.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np

from hushscribe.audio import SAMPLE_RATE
from hushscribe.engines.base import Recognition, RecognitionOptions
from hushscribe.engines.qwen_decode import BUCKETS, Decoder, FusePolicy, StepGraph, bucket, compile_caches_writable
from hushscribe.engines.qwen_encoder import AudioEncoder
from hushscribe.engines.qwen_inputs import QwenInputs
from hushscribe.errors import HushError
from hushscribe.languages import LANGUAGE_NAMES
from hushscribe.transcript import FLAG_TOKEN_CAP, Word

log = logging.getLogger(__name__)

ASR_TEXT = "<asr_text>"
# The 30 languages Qwen3-ASR was trained to name and to be told.
QWEN_LANGUAGES = frozenset(
    "zh yue en ar de fr es pt id it ko ru th vi ja tr hi ms nl sv da fi pl cs fil fa el ro hu mk".split()
)
_CODE_BY_NAME = {LANGUAGE_NAMES[code].lower(): code for code in QWEN_LANGUAGES}
# New-token budget per segment: fast Mandarin runs ~7 characters a second, about one token each,
# plus the `language X<asr_text>` prefix. A segment that needs more than this is looping.
TOKENS_PER_SECOND = 10
TOKENS_BASE = 24
# Bytes of GPU memory to plan per sequence beyond its KV cache (encoder activations, logits).
SEQUENCE_OVERHEAD_BYTES = 48 << 20
MAX_BATCH = 128
CACHE_STEP = 256  # KV cache lengths are rounded up to this, so nearby lengths share a captured graph
# Captured decode graphs are kept, one per batch-size bucket, while their KV caches fit in this share of the GPU's
# memory (and two always): live captions send batches of every size in turn, and a capture costs 1-1.5 s.
GRAPH_MEMORY_SHARE = 0.25


class QwenEngine:
    name = "qwen"

    def __init__(self, model: str | Path | None = None, *, device: str = "auto", compile: bool = True,
                 batch_size: int | None = None, dtype: str | None = None, aligner: str | Path | None = None) -> None:
        import torch
        import transformers
        from transformers import AutoProcessor, Qwen3ASRForConditionalGeneration

        # our own progress bar and messages are enough; transformers' would interleave with them
        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()

        from hushscribe.models import resolve_aligner, resolve_qwen

        folder = resolve_qwen(model)
        self._aligner_folder = resolve_aligner(aligner)
        self._aligner = None  # loaded on the first words to time
        # words are timed by the forced aligner after recognition, when it is here
        self.word_timing = "aligner" if self._aligner_folder else None
        self.model_name = str(model) if model else "qwen3-asr-1.7b"
        self.device = _pick_device(device)
        if dtype:
            dtype = getattr(torch, dtype)
        elif self.device.type == "cuda":
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        else:
            dtype = torch.float32
        try:
            self.processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
            self.model = Qwen3ASRForConditionalGeneration.from_pretrained(
                folder, dtype=dtype, local_files_only=True, attn_implementation="sdpa"
            ).to(self.device).eval()
        except (OSError, ValueError) as exc:
            raise HushError(f"cannot load Qwen3-ASR from {folder}: {str(exc).splitlines()[0]}") from None
        self.dtype = dtype
        self._inputs = QwenInputs(self.processor, self.device)
        self._encoder, self._decoder = AudioEncoder(self.model), Decoder(self.model)
        tokenizer = self.processor.tokenizer
        self._stop_ids = set(_as_list(self.model.generation_config.eos_token_id)) | {tokenizer.pad_token_id}
        self.batch_size = batch_size or self._auto_batch_size()
        # On CUDA the decode step is a CUDA graph per batch-size bucket, each holding a KV cache for a 30 s
        # segment (GRAPH_MEMORY_SHARE). With `compile`, the step is fused by torch.compile once that pays (FusePolicy).
        self.use_graphs = self.device.type == "cuda"
        # on a GPU a batch takes as long as its longest segment: a lone long one is better cut into pieces
        self.side_by_side = self.use_graphs
        if self.use_graphs:
            # cuDNN's attention builds a plan for every new sequence length (measured on an H200: the encoder
            # took 0.16-0.76 s on a length it had not seen, 0.015 s on one it had), and segments, live ones most
            # of all, are a new length nearly every time; the flash and memory-efficient kernels have no such cost
            torch.backends.cuda.enable_cudnn_sdp(False)
            compile_caches_writable()  # our Triton kernels are compiled on first use, fused or not
        self.fused = False
        self._fuse_policy = FusePolicy(self._compile_key()) if compile and self.use_graphs else None
        self._steps: dict[int, StepGraph] = {}
        self._full_cache_len = 0  # on a GPU, set by the warm-up
        self._memory_bytes = torch.cuda.get_device_properties(self.device).total_memory if self.use_graphs else 0
        if self.use_graphs:
            self._warm_up()

    # --- the Engine protocol ---

    def supports_language(self, language: str) -> bool:
        return language in QWEN_LANGUAGES

    def language_probabilities(self, segments: list[np.ndarray]) -> None:
        return None  # the model names the language of every segment itself

    def recognize(self, segments: list[np.ndarray], options: RecognitionOptions) -> list[Recognition]:
        """Recognise in batches of similar length (less padding); on CUDA OOM halve the batch and retry."""
        order = sorted(range(len(segments)), key=lambda i: len(segments[i]), reverse=True)
        results: dict[int, Recognition] = {}
        start = 0
        while start < len(order):
            chunk = order[start:start + self.batch_size]
            try:
                for i, rec in zip(chunk, self._generate([segments[i] for i in chunk], options), strict=True):
                    results[i] = rec
            except _oom_errors() as exc:
                if self.batch_size == 1:
                    raise HushError("the GPU ran out of memory even for one segment; run on the CPU "
                                    "or choose the smaller model, qwen3-asr-0.6b") from exc
                self._steps.clear()  # their KV caches are the largest thing we hold
                self._release_memory()
                self.batch_size = max(1, self.batch_size // 2)
                log.warning("GPU out of memory: batch size lowered to %d", self.batch_size)
                continue
            start += len(chunk)
        return [results[i] for i in range(len(segments))]

    def align(self, segments: list[np.ndarray], texts: list[tuple[str, str | None]]) -> list[list[Word] | None]:
        """Word timings for each segment's final (text, language), from Qwen3-ForcedAligner."""
        if self._aligner is None:
            from hushscribe.engines.qwen_aligner import QwenAligner

            self._aligner = QwenAligner(self._aligner_folder, self.device, self.dtype)
        return self._aligner.align(segments, texts)

    # --- internals ---

    def inputs(self, batch: list[np.ndarray], options: RecognitionOptions) -> dict:
        """Model inputs as the processor's own transcription request builds them (see QwenInputs): the system
        turn holds the context (empty when none, as the official package does) and a forced language
        prefills `language <Name><asr_text>` after the generation prompt."""
        inputs = self._inputs(list(batch), options.language, options.context or "")
        inputs["input_features"] = inputs["input_features"].to(self.dtype)
        return inputs

    def _generate(self, batch: list[np.ndarray], options: RecognitionOptions) -> list[Recognition]:
        import torch

        count = len(batch)
        size = bucket(count)  # the graph's rows; the encoder and the prefill run on the real ones only
        # (two at least: torch.compile treats a size of one as a constant and would compile again for it)
        batch = batch + [batch[-1]] * (max(count, 2) - count)
        inputs = self.inputs(batch, options)
        budget = max_new_tokens(max(len(a) for a in batch) / SAMPLE_RATE)
        with torch.inference_mode():
            embeds = self._embeddings(inputs)
            step = self._step_graph(size, embeds.shape[1] + budget)
            start = time.perf_counter()
            ids = step.run(embeds, inputs["attention_mask"].bool(), budget)[:count].tolist()
        if self._fuse_policy and not self.fused:
            self._fuse_policy.record(time.perf_counter() - start)
            if self._fuse_policy.due():
                self.fuse()
        return [self._parse(row, options.language) for row in ids]

    def fuse(self) -> None:
        """Compile the fused decode step now; the CUDA graphs are captured again with it."""
        if self.fused or not self.use_graphs:
            return
        policy = self._fuse_policy or FusePolicy(self._compile_key())
        log.info("compiling the decode step with torch.compile (once per process, about %.0f s)", policy.compile_s())
        start = time.perf_counter()
        self.fused = True
        self._decoder.fuse()
        self._steps.clear()
        self._warm_up()
        policy.compiled(time.perf_counter() - start)

    def _embeddings(self, inputs):
        """Prompt embeddings with the audio encoder's output in place of the audio placeholders."""
        core = self.model.model
        embeds = core.get_input_embeddings()(inputs["input_ids"])
        audio = self._encoder(inputs["input_features"], inputs["input_features_mask"])
        slots = core.get_placeholder_mask(inputs["input_ids"], inputs_embeds=embeds, audio_features=audio)
        return embeds.masked_scatter(slots, audio.to(embeds.dtype))

    def _step_graph(self, size: int, cache_len: int) -> StepGraph:
        step = self._steps.get(size)
        if step is None or step.cache_len < cache_len:
            self._steps.pop(size, None)
            cache_len = CACHE_STEP * math.ceil(max(cache_len, self._full_cache_len) / CACHE_STEP)
            budget = GRAPH_MEMORY_SHARE * self._memory_bytes
            while len(self._steps) >= 2 and self._cache_bytes(size, cache_len) + sum(
                    self._cache_bytes(s.batch, s.cache_len) for s in self._steps.values()) > budget:
                self._steps.pop(next(iter(self._steps)))  # the oldest bucket's cache goes before we take more
            # no gc.collect() or empty_cache() here: what was dropped is freed at once and its memory reused, and a
            # collection costs 0.1-0.4 s in a process this size (a server meeting a new batch size mid-request)
            step = StepGraph(self._decoder, size, cache_len, self.device, self.dtype, sorted(self._stop_ids),
                             self.processor.tokenizer.pad_token_id, use_graph=self.use_graphs)
            self._steps[size] = step
        return step

    def _parse(self, ids: list[int], forced: str | None) -> Recognition:
        length = next((i + 1 for i, t in enumerate(ids) if t in self._stop_ids), None)
        finished = length is not None
        log.debug("a segment decoded %d new tokens", length or len(ids))
        raw = self.processor.tokenizer.decode(ids, skip_special_tokens=True)
        language, text = parse_output(raw, forced)
        flags = [] if finished else [FLAG_TOKEN_CAP]  # the surfaces say so, with the segment's time
        return Recognition(text=text, language=language, flags=flags)

    def _cache_bytes(self, batch: int, cache_len: int) -> int:
        """The KV cache's size for `batch` sequences of `cache_len` tokens."""
        text = self.model.config.text_config
        return 2 * text.num_hidden_layers * text.num_key_value_heads * text.head_dim * self.dtype.itemsize * batch \
            * cache_len

    def _auto_batch_size(self) -> int:
        if self.device.type != "cuda":
            return 8
        import torch

        free, _ = torch.cuda.mem_get_info(self.device)
        tokens = 390 + 64 + max_new_tokens(30.0)  # a 30 s segment: audio tokens + prompt + budget
        per_sequence = self._cache_bytes(1, tokens) + SEQUENCE_OVERHEAD_BYTES
        fits = int(min(MAX_BATCH, free * 0.6 // per_sequence))
        return max([b for b in BUCKETS if b <= fits], default=1)  # batches are padded up to a bucket

    def _warm_up(self) -> None:
        """Run the encoder and a prefill once and capture the decode step for a 30 s segment, so that the
        first file waits for none of them (and, fused, nothing is compiled later)."""
        import torch

        size = bucket(1)
        inputs = self.inputs([np.zeros(SAMPLE_RATE * 30, np.float32)] * size, RecognitionOptions(language="en"))
        with torch.inference_mode():
            embeds = self._embeddings(inputs)
            self._full_cache_len = embeds.shape[1] + max_new_tokens(30.0)  # every graph's cache holds this much
            self._step_graph(size, self._full_cache_len).run(embeds, inputs["attention_mask"].bool(), 2)

    def _compile_key(self) -> str:
        import torch

        text = self.model.config.text_config
        gpu = torch.cuda.get_device_name(self.device)
        return f"{text.hidden_size}x{text.num_hidden_layers} {gpu} torch {torch.__version__}"

    def _release_memory(self) -> None:
        import gc

        import torch

        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


def max_new_tokens(seconds: float) -> int:
    return TOKENS_BASE + math.ceil(seconds * TOKENS_PER_SECOND)


def parse_output(raw: str, forced: str | None) -> tuple[str | None, str]:
    """(ISO language, text) from what the model wrote. Forced, it writes only the text; unforced,
    `language <Name><asr_text><text>`, and `language None` means it heard no speech."""
    if forced:
        return forced, raw.strip()
    if ASR_TEXT not in raw:
        return None, raw.strip()
    prefix, text = raw.split(ASR_TEXT, 1)
    name = prefix.strip().removeprefix("language").strip().lower()
    if name in ("none", ""):
        return None, ""
    return _CODE_BY_NAME.get(name), text.strip()


def _pick_device(device: str):
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except RuntimeError:
        raise HushError(f"unknown device '{device}'; use auto, cpu or cuda[:N]") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise HushError("no CUDA GPU is available; use --device cpu")
    return chosen


def _oom_errors() -> tuple[type[BaseException], ...]:
    import torch

    return (torch.OutOfMemoryError,)


def _as_list(value) -> list[int]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]
