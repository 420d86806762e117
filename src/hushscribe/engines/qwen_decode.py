"""Greedy decoding for Qwen3-ASR: our own forward of the text decoder over a static KV cache, the decode
step replayed as CUDA graphs.

transformers' generate() with torch.compile took minutes to compile and recompiled for every new batch
size. Here the decoder's layers run as functions of plain tensors (`before_attention`, the cache write
and attention, `after_attention`), for the prefill and for each new token:

- q/k/v and gate/up are each one matrix product: the model's own weights joined once, its Linear
  layers left holding views into the joined matrices, so nothing is held twice.
- One new token attends only to the cache slots in use. On a GPU the split-KV kernel (qwen_kernels)
  reads each row's live slots itself, so one graph serves every step (H200, 1.7B, batch 128, 512 live
  slots: 4.0 ms a step against 5.9 with SDPA over 64-slot windows; 5.8 against 9.2 at 1024). Elsewhere
  a step is captured once per window of WINDOW slots and the host picks the window that covers the
  longest row.
- The prefill attends to the prompt only, not to the whole cache.
- With `fuse`, a layer's code before and after attention is compiled by torch.compile (Inductor),
  which fuses its ~60 small kernels (norms, rotary, residuals). Every layer runs the same code on its
  own weights, so one layer is compiled, not the model, and once: one graph serves every batch size,
  window and length, the prefill and the decode step alike. The host looks at the finished flags only
  every few steps.

A compile still costs seconds the first time and less once its artefacts are cached, so it waits
until it pays (see `FusePolicy`), and its caches live in hushscribe's cache folder, never in the
private temporary folder that each process removes at exit.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F

from hushscribe.engines import qwen_kernels

BUCKETS = (2, 4, 8, 16, 32, 64, 128)  # batch sizes a graph is captured for (a batch of one rides in 2)
CHECK_EVERY = 16  # decode steps between looks at whether every row has finished
WINDOW = 64  # cache slots: without the split-KV kernel, a step is captured for every multiple of this
USE_KERNELS = True  # the prefill and decode kernels on CUDA with Triton; False: SDPA (bench/profile_hour.py --windows)


class LayerWeights(NamedTuple):
    """One decoder layer's tensors, q/k/v and gate/up joined."""
    input_norm: torch.Tensor
    qkv: torch.Tensor
    qkv_bias: torch.Tensor | None
    q_norm: torch.Tensor
    k_norm: torch.Tensor
    out: torch.Tensor
    out_bias: torch.Tensor | None
    post_norm: torch.Tensor
    gate_up: torch.Tensor
    down: torch.Tensor


class Shape(NamedTuple):
    heads: int
    kv_heads: int
    head_dim: int
    eps: float


class Decoder:
    """The text decoder over a KV cache that the caller holds: `forward` writes the keys and values of
    `embeds` at `slots` and returns the last position's logits."""

    def __init__(self, model) -> None:
        text = model.model.language_model
        config = text.config
        self.embed, self.rotary, self.norm, self.head = text.embed_tokens.weight, text.rotary_emb, \
            text.norm.weight, model.lm_head.weight
        self.shape = Shape(config.num_attention_heads, config.num_key_value_heads,
                           getattr(config, "head_dim", config.hidden_size // config.num_attention_heads),
                           config.rms_norm_eps)
        self.layers = [_joined(layer) for layer in text.layers[:config.num_hidden_layers]]
        self.num_layers = len(self.layers)
        self._before, self._after = before_attention, after_attention
        # on CUDA the prefill and each new token attend through our kernels (qwen_kernels), else through SDPA
        self.kernels = USE_KERNELS and qwen_kernels.available(self.embed.device)

    def fuse(self) -> None:
        self._before, self._after = _compiled(before_attention), _compiled(after_attention)

    def forward(self, embeds, positions, keys, values, slots, *, mask=None, starts=None) -> torch.Tensor:
        """embeds (batch, T, hidden) at `positions` (batch, T); keys/values: per layer (batch, kv_heads, slots,
        dim); `slots` (T,) where this step's keys go. Which slots each position sees: through the kernels,
        `starts` (batch,), each row's first real slot (a prompt is causal from there; a new token sees its row
        from there to the newest slot); through SDPA, `mask` (batch, 1, T, window) over the first `window`
        slots. Returns (batch, vocab) logits of the last position."""
        batch, length, _ = embeds.shape
        cos, sin = (t.flatten(0, 1) for t in self.rotary(embeds, positions))
        attend = self._kernel(starts, slots, length) if self.kernels else self._masked(mask, embeds.dtype, slots)

        def heads(x):  # (batch * T, heads, dim) -> (batch, heads, T, dim)
            return x.view(batch, length, *x.shape[1:]).transpose(1, 2)

        hidden = embeds.flatten(0, 1)  # the compiled halves see rows of tokens, their one size batch * T
        for weights, layer_keys, layer_values in zip(self.layers, keys, values):
            q, k, v = self._before(hidden, cos, sin, weights, self.shape)
            attended = attend(heads(q), heads(k), heads(v), layer_keys, layer_values)
            attended = attended.reshape(batch, self.shape.heads, length, -1).transpose(1, 2)
            hidden = self._after(hidden, attended.reshape(batch * length, -1), weights, self.shape)
        return F.linear(rms_norm(hidden.view(batch, length, -1)[:, -1], self.norm, self.shape.eps), self.head)

    def _kernel(self, starts, slots, length: int):
        """attend(q, k, v, keys, values): the new keys and values written into the cache at `slots`, then
        attention through the kernels (a new token's keys and values are written by the decode kernel)."""
        scale = self.shape.head_dim ** -0.5
        if length == 1:
            return lambda q, k, v, keys, values: qwen_kernels.decode_attention(
                q.reshape(q.shape[0], self.shape.kv_heads, -1, q.shape[-1]), k, v, keys, values, starts, slots,
                scale)

        def attend(q, k, v, keys, values):
            _write(keys, values, slots, k, v)
            return qwen_kernels.prefill_attention(q, keys[:, :, :length], values[:, :, :length], starts, scale)

        return attend

    def _masked(self, mask, dtype, slots):
        """SDPA over the first `window` slots, the mask as an additive bias made once for all layers (SDPA would
        turn a boolean one into a bias in every layer); the query heads of a key head are packed as rows of one
        query, so the cache is read as it is, and the mask of several new positions is tiled."""
        kv_heads, groups, window = self.shape.kv_heads, self.shape.heads // self.shape.kv_heads, mask.shape[-1]
        if mask.shape[2] > 1 and groups > 1:
            mask = mask.repeat(1, 1, groups, 1)
        bias = torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(~mask, -math.inf)

        def attend(q, k, v, keys, values):
            _write(keys, values, slots, k, v)
            batch, _, length, dim = q.shape
            return F.scaled_dot_product_attention(q.reshape(batch, kv_heads, groups * length, dim),
                                                  keys[:, :, :window], values[:, :, :window], attn_mask=bias,
                                                  scale=self.shape.head_dim ** -0.5)

        return attend


def before_attention(hidden, cos, sin, weights: LayerWeights, shape: Shape):
    """A Qwen3 decoder layer up to attention, on tokens (rows, hidden), cos/sin (rows, dim): the queries
    (rows, heads, dim), the new keys and values (rows, kv_heads, dim)."""
    heads, kv_heads, dim, eps = shape
    x = rms_norm(hidden, weights.input_norm, eps)
    q, k, v = F.linear(x, weights.qkv, weights.qkv_bias).split([heads * dim, kv_heads * dim, kv_heads * dim], -1)
    q = rms_norm(q.view(-1, heads, dim), weights.q_norm, eps)
    k = rms_norm(k.view(-1, kv_heads, dim), weights.k_norm, eps)
    return rotate(q, cos, sin), rotate(k, cos, sin), v.view(-1, kv_heads, dim)


def after_attention(hidden, attended, weights: LayerWeights, shape: Shape):
    """The rest of the layer: the attention's output (rows, heads * dim) projected and added, then the MLP."""
    hidden = hidden + F.linear(attended, weights.out, weights.out_bias)
    gate, up = F.linear(rms_norm(hidden, weights.post_norm, shape.eps), weights.gate_up).chunk(2, -1)
    return hidden + F.linear(F.silu(gate) * up, weights.down)


def _write(keys, values, slots, k, v) -> None:
    """k, v (batch, kv_heads, T, dim) into the cache at `slots` (T,); outside the compiled parts, where Inductor
    would copy the whole cache to write a slot into it."""
    keys.index_copy_(2, slots, k)
    values.index_copy_(2, slots, v)


def rms_norm(x, weight, eps: float):
    """Qwen3RMSNorm: in float32, the weight applied after the cast back."""
    x32 = x.float()
    return weight * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


def rotate(x, cos, sin):
    """Rotary position embedding of x (rows, heads, dim); cos/sin (rows, dim) from the model's own rotary module."""
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin


def _joined(layer) -> LayerWeights:
    attention, mlp = layer.self_attn, layer.mlp
    qkv, qkv_bias = _join(attention.q_proj, attention.k_proj, attention.v_proj)
    gate_up, _ = _join(mlp.gate_proj, mlp.up_proj)
    return LayerWeights(layer.input_layernorm.weight, qkv, qkv_bias, attention.q_norm.weight, attention.k_norm.weight,
                        attention.o_proj.weight, attention.o_proj.bias, layer.post_attention_layernorm.weight, gate_up,
                        mlp.down_proj.weight)


def _join(*linears):
    """One weight (and bias) for several Linear layers on the same input; they keep views into it."""
    weight = torch.cat([linear.weight for linear in linears])
    bias = torch.cat([linear.bias for linear in linears]) if linears[0].bias is not None else None
    start = 0
    for linear in linears:  # the same Parameters point into the joined tensors: their own storage is freed
        rows = linear.weight.shape[0]
        linear.weight.data = weight[start:start + rows]
        if bias is not None:
            linear.bias.data = bias[start:start + rows]
        start += rows
    return weight, bias


@functools.cache
def _compiled(function):
    """`function` through torch.compile, once per process: the same code for every layer, batch size,
    window and length. The halves see rows of tokens (batch * T), one dynamic size that is never 1 (a
    prompt has many tokens; the decode step's batch is at least 2, see BUCKETS), so neither the decode step
    nor a lone segment's prefill is compiled again. Dynamo would specialise a size seen as 1, and with
    batch and length apart the decode step (T = 1) was a second compile. Unbacked sizes avoid that but cost
    fusion: Inductor then split every RMSNorm into two kernels (H200, 30 s clip: 40 558 kernels against
    30 618, 241 against 211 ms)."""
    import torch._dynamo

    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, 64)
    compiled = torch.compile(function, fullgraph=True)

    def run(hidden, *args):
        for tensor in (hidden, *args[:2]):
            if isinstance(tensor, torch.Tensor):
                torch._dynamo.maybe_mark_dynamic(tensor, 0)  # rows: batch * T
        return compiled(hidden, *args)

    return run


class StepGraph:
    """A KV cache for `batch` rows of `cache_len` slots, and the decode step captured for each window."""

    def __init__(self, decoder: Decoder, batch: int, cache_len: int, device: torch.device, dtype: torch.dtype,
                 stop_ids: list[int], pad_id: int, use_graph: bool) -> None:
        shape = decoder.shape
        self.decoder, self.batch, self.cache_len = decoder, batch, cache_len
        cache = (batch, shape.kv_heads, cache_len, shape.head_dim)
        self.keys = [torch.zeros(cache, device=device, dtype=dtype) for _ in range(decoder.num_layers)]
        self.values = [torch.zeros(cache, device=device, dtype=dtype) for _ in range(decoder.num_layers)]
        self.tokens = torch.zeros(batch, 1, dtype=torch.long, device=device)
        self.positions = torch.zeros(batch, 1, dtype=torch.long, device=device)
        self.slot = torch.zeros(1, dtype=torch.long, device=device)  # where the next token's keys go
        self.starts = torch.zeros(batch, dtype=torch.int32, device=device)  # each row's first real slot
        self.mask = torch.zeros(batch, 1, 1, cache_len, dtype=torch.bool, device=device)
        self.finished = torch.zeros(batch, dtype=torch.bool, device=device)
        self.stop = torch.tensor(stop_ids, device=device)
        self.pad = pad_id  # written after a row's stop token
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}
        self.windows = self._windows()
        if use_graph:
            self._capture()

    def _windows(self) -> list[int]:
        """The windows a step is captured for: one, the whole cache, where the split-KV kernel reads only the
        live slots itself."""
        if self.decoder.kernels:
            return [self.cache_len]
        return sorted({min(w, self.cache_len) for w in range(WINDOW, self.cache_len + WINDOW, WINDOW)})

    def _window(self, slot: int) -> int:
        """The smallest window that holds `slot`."""
        return next(w for w in self.windows if w > slot)

    def _capture(self) -> None:
        """One graph per window, sharing one memory pool; each window's step runs twice first (on a side
        stream, from an empty cache) so that nothing is compiled or chosen during capture."""
        pool = torch.cuda.graph_pool_handle()
        stream = torch.cuda.Stream()  # one: every stream gets its own cuBLAS workspace
        for window in self.windows:
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                self.reset()
                for _ in range(2):
                    self._step(window)
            torch.cuda.current_stream().wait_stream(stream)
            self.reset()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=pool):
                self._step(window)
            self.graphs[window] = graph
        self.reset()

    def _step(self, window: int) -> None:
        """One token for every row, all on the device: feed `tokens`, write the next ones back."""
        embeds = F.embedding(self.tokens, self.decoder.embed)
        mask = None
        if not self.decoder.kernels:  # the kernels see each row from its start to the newest slot without one
            mask = self.mask[..., :window].index_fill_(3, self.slot, True)  # the new token attends to itself
        logits = self.decoder.forward(embeds, self.positions, self.keys, self.values, self.slot, mask=mask,
                                      starts=self.starts)
        next_tokens = logits.argmax(-1)
        next_tokens = torch.where(self.finished, torch.full_like(next_tokens, self.pad), next_tokens)
        self.finished |= torch.isin(next_tokens, self.stop)
        self.tokens.copy_(next_tokens.view(-1, 1))
        self.positions.add_(1)
        self.slot.add_(1)

    def reset(self) -> None:
        self.mask.zero_()
        self.finished.zero_()
        self.slot.zero_()

    def prefill(self, embeds: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Write the keys and values of `embeds` (rows, length, hidden; left-padded, `valid` marks real tokens)
        into an empty cache; returns each row's first new token. There may be fewer rows than the graph has:
        the encoder and the prefill run on the real ones only, and the graph's other rows decode idle
        (finished from the start, each seeing only its own new slots)."""
        self.reset()
        rows, length = valid.shape
        positions = (valid.long().cumsum(-1) - 1).clamp(min=0)
        slots = torch.arange(length, device=embeds.device)
        self.starts.fill_(length)
        self.starts[:rows] = length - valid.sum(-1)
        mask = None if self.decoder.kernels else prefill_mask(valid)
        logits = self.decoder.forward(embeds, positions, [k[:rows] for k in self.keys],
                                      [v[:rows] for v in self.values], slots, mask=mask, starts=self.starts[:rows])
        self.mask[:rows, 0, 0, :length] = valid
        self.slot.fill_(length)
        self.positions.zero_()
        self.positions[:rows] = positions[:, -1:] + 1
        first = torch.full((self.batch,), self.pad, dtype=torch.long, device=embeds.device)
        first[:rows] = logits.argmax(-1)
        self.finished.fill_(True)
        self.finished[:rows] = torch.isin(first[:rows], self.stop)
        self.tokens.copy_(first.view(-1, 1))
        return first

    def run(self, embeds: torch.Tensor, valid: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
        """Prefill, then decode greedily. Returns (batch, max_new_tokens) token ids, pad after each row's stop."""
        out = torch.full((self.batch, max_new_tokens), self.pad, dtype=torch.long, device=embeds.device)
        out[:, 0] = self.prefill(embeds, valid)
        length = embeds.shape[1]
        for step in range(1, max_new_tokens):
            window = self._window(length + step - 1)
            if self.graphs:
                self.graphs[window].replay()
            else:
                self._step(window)
            out[:, step] = self.tokens[:, 0]
            if step % CHECK_EVERY == 0 and bool(self.finished.all()):
                break
        return out


def prefill_mask(valid: torch.Tensor) -> torch.Tensor:
    """(batch, 1, length, length): causal and blind to left padding; a padding position sees itself only,
    so that no row of the attention is empty."""
    length = valid.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool, device=valid.device).tril()
    itself = torch.eye(length, dtype=torch.bool, device=valid.device)
    return (causal & (valid[:, None, :] | itself))[:, None]


def bucket(batch: int) -> int:
    return next((b for b in BUCKETS if b >= batch), batch)


# The fused step saves about this share of a plain step's time (H200, 1.7B: 5.6 → 3.2 ms at batch 1,
# 9.8 → 6.8 ms at batch 128).
FUSED_SAVING = 0.3
# What a compile is assumed to cost until one has been timed on this machine: above the 9.5-11 s measured cold
# on H200 hosts (1.7B, one graph per half; 12.5-16 s when the decode step had its own).
COLD_COMPILE_S = 20.0


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
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(timings, indent=1) + "\n")
            tmp.replace(path)
        except OSError:  # a cache folder that cannot be written (compile_caches_writable said so): not kept
            with contextlib.suppress(OSError):
                tmp.unlink()


def compile_cache() -> Path:
    """The compile timings, beside torch.compile's own artefacts (TORCHINDUCTOR_CACHE_DIR, set at import)."""
    from hushscribe.models import cache_dir

    return cache_dir() / "torch-compile"


def compile_caches_writable() -> None:
    """torch.compile and Triton write their kernels (no user data) into hushscribe's cache folder, as set at
    import, and fail when they cannot. Where that folder cannot be written, they are pointed at this process's
    private folder instead, with a warning: kernels are then compiled again by every process."""
    import logging
    import tempfile

    from hushscribe import tempfiles

    folder = compile_cache()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            return
    except OSError as exc:
        private = tempfiles.process_folder() / "torch-compile"
        for name, sub in (("TORCHINDUCTOR_CACHE_DIR", "inductor"), ("TRITON_CACHE_DIR", "triton")):
            if os.environ.get(name) == str(folder / sub):  # ours, not the user's own
                os.environ[name] = str(private / sub)
        logging.getLogger(__name__).warning(
            "compiled kernels are not kept: hushscribe's cache folder %s cannot be written (%s); set "
            "HUSHSCRIBE_CACHE to a folder you can write", folder, exc.strerror or exc)


def _timings() -> dict[str, float]:
    try:
        return json.loads((compile_cache() / "compile-seconds.json").read_text())
    except (OSError, ValueError):
        return {}
