"""Greedy decoding for Qwen3-ASR with a static KV cache, the decoder step replayed as a CUDA graph.

transformers' generate() with torch.compile took minutes to compile and recompiled for every new
batch size. Here one decode step (embed → decoder → lm_head → argmax → advance position and mask)
is captured once per batch-size bucket and replayed with no host work between tokens; the host
looks at the finished flags only every few steps. With `fuse`, the step is first compiled by
torch.compile (Inductor), once for all batch sizes and cache lengths: it launches ~500 kernels
instead of ~1800, which took a batch-1 step from 5.6 to 3.2 ms and a batch-128 step from 9.8 to
6.8 ms (H200, 1.7B).

The compile costs 40-65 s the first time and less once its artefacts are cached, so it waits until
it pays (see `FusePolicy`), and its caches live in hushscribe's cache folder, never in the private
temporary folder that each process removes at exit.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
from pathlib import Path

import torch
from transformers.models.qwen3.modeling_qwen3 import Qwen3Model

BUCKETS = (2, 4, 8, 16, 32, 64, 128)  # batch sizes a graph is captured for (a batch of one rides in 2)
CHECK_EVERY = 16  # decode steps between looks at whether every row has finished
# transformers renamed the decoder's `past_key_values` argument to `cache` (5.2x); older ones ignore `cache`
CACHE_ARGUMENT = "cache" if "cache" in inspect.signature(Qwen3Model.forward).parameters else "past_key_values"


class StepGraph:
    """Static buffers and a captured decode step for one batch size and cache length."""

    def __init__(self, model, batch: int, cache_len: int, device: torch.device, dtype: torch.dtype,
                 stop_ids: list[int], pad_id: int, use_graph: bool, fuse: bool = False) -> None:
        from transformers import StaticCache

        text_config = model.config.text_config
        self.model, self.batch, self.cache_len = model, batch, cache_len
        self.cache = StaticCache(config=text_config, max_cache_len=cache_len)
        self.tokens = torch.zeros(batch, 1, dtype=torch.long, device=device)
        self.positions = torch.zeros(batch, 1, dtype=torch.long, device=device)
        self.mask = torch.zeros(batch, 1, 1, cache_len, dtype=torch.bool, device=device)
        self.finished = torch.zeros(batch, dtype=torch.bool, device=device)
        self.stop = torch.tensor(stop_ids, device=device)
        self.pad = pad_id  # written after a row's stop token
        self.graph = None
        self._step_fn = _fused_step() if fuse else decode_step
        self._prime(device, dtype, use_graph, fuse)

    def _prime(self, device, dtype, use_graph: bool, fuse: bool) -> None:
        """Allocate the cache with one prefill token, then capture the step (warm-up runs first)."""
        embeds = torch.zeros(self.batch, 1, self.model.config.text_config.hidden_size, device=device, dtype=dtype)
        self._forward(embeds, self.positions, self._prefill_mask(torch.ones(self.batch, 1, dtype=torch.bool,
                                                                            device=device)))
        if fuse:  # one compiled step serves every batch size and cache length
            cache = [t for layer in self.cache.layers for t in (layer.keys, layer.values)]
            for tensor in (self.tokens, self.positions, self.mask, self.finished, *cache):
                torch._dynamo.maybe_mark_dynamic(tensor, 0)
            for tensor, dim in ((self.mask, 3), *((t, 2) for t in cache)):
                torch._dynamo.maybe_mark_dynamic(tensor, dim)
        if not use_graph:
            return
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                self._step()
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self._step()

    def _forward(self, embeds, positions, mask):
        return last_logits(self.model, self.cache, embeds, positions, mask)

    def _step(self) -> None:
        self._step_fn(self.model, self.cache, self.tokens, self.positions, self.mask, self.finished, self.stop,
                      self.pad)

    def _prefill_mask(self, valid: torch.Tensor) -> torch.Tensor:
        """(batch, 1, query, cache_len) boolean mask: causal, and blind to left padding."""
        batch, length = valid.shape
        keys = torch.zeros(batch, self.cache_len, dtype=torch.bool, device=valid.device)
        keys[:, :length] = valid
        causal = torch.ones(length, self.cache_len, dtype=torch.bool, device=valid.device).tril()
        return causal[None, None] & keys[:, None, None, :]

    def reset(self) -> None:
        for layer in self.cache.layers:
            layer.cumulative_length.zero_()
        self.mask.zero_()
        self.finished.zero_()

    def run(self, embeds: torch.Tensor, valid: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
        """Prefill `embeds` (batch, length, hidden; left-padded, `valid` marks real tokens), then
        decode greedily. Returns (batch, max_new_tokens) token ids, pad after each row's stop."""
        self.reset()
        length = embeds.shape[1]
        positions = (valid.long().cumsum(-1) - 1).clamp(min=0)
        logits = self._forward(embeds, positions, self._prefill_mask(valid))
        self.mask[:, 0, 0, :length] = valid
        self.positions.copy_(positions[:, -1:] + 1)
        first = logits.argmax(-1)
        self.finished.copy_(torch.isin(first, self.stop))
        self.tokens.copy_(first.view(-1, 1))
        out = torch.full((self.batch, max_new_tokens), self.pad, dtype=torch.long, device=embeds.device)
        out[:, 0] = first
        for step in range(1, max_new_tokens):
            if self.graph is not None:
                self.graph.replay()
            else:
                self._step()
            out[:, step] = self.tokens[:, 0]
            if step % CHECK_EVERY == 0 and bool(self.finished.all()):
                break
        return out


def last_logits(model, cache, embeds, positions, mask) -> torch.Tensor:
    """(batch, vocab) logits for the last position, writing the keys and values into `cache`."""
    out = model.model.language_model(
        inputs_embeds=embeds, attention_mask={"full_attention": mask}, position_ids=positions,
        use_cache=True, **{CACHE_ARGUMENT: cache},
    )
    return model.lm_head(out.last_hidden_state[:, -1])


def decode_step(model, cache, tokens, positions, mask, finished, stop, pad: int) -> None:
    """One token for every row, all on the device: feed `tokens`, write the next ones back."""
    embeds = model.model.language_model.embed_tokens(tokens)
    mask.index_fill_(3, cache.layers[0].cumulative_length.view(1), True)  # the new token attends to itself
    next_tokens = last_logits(model, cache, embeds, positions, mask).argmax(-1)
    next_tokens = torch.where(finished, torch.full_like(next_tokens, pad), next_tokens)
    finished |= torch.isin(next_tokens, stop)
    tokens.copy_(next_tokens.view(-1, 1))
    positions.add_(1)


@functools.cache
def _fused_step():
    """decode_step through torch.compile: Inductor fuses the ~60 small kernels of each layer (norms,
    rotary, cache write, residuals) into a few, which is what bounds a step at small batches."""
    import torch._dynamo

    for name in ("recompile_limit", "cache_size_limit"):  # one compile per model (and dtype) in a process
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, 64)
    return torch.compile(decode_step, fullgraph=True)


def bucket(batch: int) -> int:
    return next((b for b in BUCKETS if b >= batch), batch)


# The fused step saves about this share of a plain step's time (H200, 1.7B: 5.6 → 3.2 ms at batch 1,
# 9.8 → 6.8 ms at batch 128).
FUSED_SAVING = 0.3
COLD_COMPILE_S = 60.0  # what a compile is assumed to cost until one has been timed on this machine


class FusePolicy:
    """When to compile the fused step: once the time the plain step has lost so far (its decode time
    × FUSED_SAVING) reaches what a compile costs here. Ski rental: a short job never waits for a
    compile, and a long one pays at most twice what knowing its length in advance would have cost.
    A compile's measured time is kept per model, GPU and torch version in the cache folder, so a
    warm compile cache makes the next process fuse sooner."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.plain_decode_s = 0.0
        self._compile_s = _timings().get(key, COLD_COMPILE_S)  # read once: due() runs after every batch

    def record(self, seconds: float) -> None:
        self.plain_decode_s += seconds

    def due(self) -> bool:
        return self.plain_decode_s * FUSED_SAVING >= self._compile_s

    def compile_s(self) -> float:
        return self._compile_s

    def compiled(self, seconds: float) -> None:
        timings = _timings()
        timings[self.key] = round(seconds, 1)
        path = compile_cache() / "compile-seconds.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(timings, indent=1) + "\n")
        tmp.replace(path)


def compile_cache() -> Path:
    """The compile timings, beside torch.compile's own artefacts (TORCHINDUCTOR_CACHE_DIR, set at import)."""
    from hushscribe.models import cache_dir

    return cache_dir() / "torch-compile"


def _timings() -> dict[str, float]:
    try:
        return json.loads((compile_cache() / "compile-seconds.json").read_text())
    except (OSError, ValueError):
        return {}
