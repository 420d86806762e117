"""Greedy decoding for Qwen3-ASR with a static KV cache, the decoder step replayed as a CUDA graph.

transformers' generate() with torch.compile took minutes to compile and recompiled for every new
batch size. Here one decode step (embed → decoder → lm_head → argmax → advance position and mask)
is captured once per batch-size bucket, in about a second, and replayed with no host work between
tokens; the host looks at the finished flags only every few steps.
"""

from __future__ import annotations

import inspect

import torch
from transformers.models.qwen3.modeling_qwen3 import Qwen3Model

BUCKETS = (2, 4, 8, 16, 32, 64, 128)  # batch sizes a graph is captured for (a batch of one rides in 2)
CHECK_EVERY = 16  # decode steps between looks at whether every row has finished
# transformers renamed the decoder's `past_key_values` argument to `cache` (5.2x); older ones ignore `cache`
CACHE_ARGUMENT = "cache" if "cache" in inspect.signature(Qwen3Model.forward).parameters else "past_key_values"


class StepGraph:
    """Static buffers and a captured decode step for one batch size and cache length."""

    def __init__(self, model, batch: int, cache_len: int, device: torch.device, dtype: torch.dtype,
                 stop_ids: list[int], pad_id: int, use_graph: bool) -> None:
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
        self._prime(device, dtype, use_graph)

    def _prime(self, device, dtype, use_graph: bool) -> None:
        """Allocate the cache with one prefill token, then capture the step (warm-up runs first)."""
        embeds = torch.zeros(self.batch, 1, self.model.config.text_config.hidden_size, device=device, dtype=dtype)
        self._forward(embeds, self.positions, self._prefill_mask(torch.ones(self.batch, 1, dtype=torch.bool,
                                                                            device=device)))
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
        out = self.model.model.language_model(
            inputs_embeds=embeds, attention_mask={"full_attention": mask}, position_ids=positions,
            use_cache=True, **{CACHE_ARGUMENT: self.cache},
        )
        return self.model.lm_head(out.last_hidden_state[:, -1:])

    def _step(self) -> None:
        """One token for every row, all on the device: feed `tokens`, write the next ones back."""
        embeds = self.model.model.language_model.embed_tokens(self.tokens)
        position = self.cache.layers[0].cumulative_length
        self.mask.index_fill_(3, position.view(1), True)  # the new token attends to itself
        logits = self._forward(embeds, self.positions, self.mask)
        next_tokens = logits[:, -1].argmax(-1)
        next_tokens = torch.where(self.finished, torch.full_like(next_tokens, self.pad), next_tokens)
        self.finished |= torch.isin(next_tokens, self.stop)
        self.tokens.copy_(next_tokens.view(-1, 1))
        self.positions.add_(1)

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
        first = logits[:, -1].argmax(-1)
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


ATTENTION = "hushscribe_sdpa"


def gqa_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None, **kwargs):
    """SDPA for the decoder that never copies the KV cache per query head. For one new token the
    query heads that share a key/value head become rows of one query (B, kv_heads, group, dim), so
    attention reads the static cache as it is; older transformers repeated it for every head and
    step. Longer queries (the prefill, once) take the library's path."""
    groups = getattr(module, "num_key_value_groups", 1)
    if query.shape[2] != 1 or groups == 1:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    batch, heads, _, dim = query.shape
    packed = query.reshape(batch, heads // groups, groups, dim)
    out = torch.nn.functional.scaled_dot_product_attention(packed, key, value, attn_mask=attention_mask, scale=scaling)
    return out.reshape(batch, heads, 1, dim).transpose(1, 2).contiguous(), None


def use_gqa_attention(model) -> None:
    """Route the text decoder's attention (not the audio encoder's) through gqa_attention."""
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION, gqa_attention)
    model.config.text_config._attn_implementation = ATTENTION


def bucket(batch: int) -> int:
    return next((b for b in BUCKETS if b >= batch), batch)
