"""Attention for Qwen3-ASR's two halves, registered with transformers' AttentionInterface.

- The text decoder, one new token at a time: the query heads that share a key/value head become
  rows of one query, so the static KV cache is read as it is instead of being repeated per head.
- The audio encoder attends within fixed windows (8 s). Outside flash-attention builds,
  transformers runs one SDPA call per window in a Python loop: 512 calls per layer for a batch of
  128 × 30 s, which made the encoder take a second. Here the packed windows are padded into one
  (windows, heads, width, dim) batch and attended in a single call with a key-padding mask. The
  encoder hands packed sequences (cu_seqlens) only to implementations whose name says "flash",
  hence the name.
"""

from __future__ import annotations

import torch

DECODER_ATTENTION = "hushscribe_sdpa"
ENCODER_ATTENTION = "hushscribe_flash_windows"


def gqa_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None, **kwargs):
    """SDPA for one new token against the cache (B, kv_heads, slots, dim) with no per-head copy.
    Longer queries (the prefill, once) take the library's path."""
    groups = getattr(module, "num_key_value_groups", 1)
    if query.shape[2] != 1 or groups == 1:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    batch, heads, _, dim = query.shape
    packed = query.reshape(batch, heads // groups, groups, dim)
    out = torch.nn.functional.scaled_dot_product_attention(packed, key, value, attn_mask=attention_mask, scale=scaling)
    return out.reshape(batch, heads, 1, dim).transpose(1, 2).contiguous(), None


def window_attention(module, query, key, value, attention_mask=None, scaling=None, cu_seq_lens_q=None,
                     max_length_q=None, **kwargs):
    """Bidirectional attention within each packed window. query/key/value: (1, heads, tokens, dim),
    windows back to back as `cu_seq_lens_q` says. Returns (1, tokens, heads, dim), as flash does."""
    _, heads, tokens, dim = query.shape
    starts, lengths = cu_seq_lens_q[:-1].long(), (cu_seq_lens_q[1:] - cu_seq_lens_q[:-1]).long()
    width = int(max_length_q) if max_length_q is not None else int(lengths.max())
    offsets = torch.arange(width, device=query.device)
    valid = offsets[None] < lengths[:, None]  # (windows, width)
    index = (starts[:, None] + offsets[None]).clamp(max=tokens - 1)

    def windows(x):  # (1, heads, tokens, dim) → (windows, heads, width, dim)
        return x[0][:, index].transpose(0, 1)

    out = torch.nn.functional.scaled_dot_product_attention(
        windows(query), windows(key), windows(value), attn_mask=valid[:, None, None, :], scale=scaling,
    )
    # valid slots in row-major order are exactly the packed tokens in order
    rows = torch.nonzero(valid.flatten(), as_tuple=True)[0]
    return out.transpose(1, 2).reshape(-1, heads, dim)[rows][None], None


def use_fast_attention(model) -> None:
    """Route the text decoder through gqa_attention and the audio encoder through window_attention."""
    from transformers import AttentionInterface

    AttentionInterface.register(DECODER_ATTENTION, gqa_attention)
    AttentionInterface.register(ENCODER_ATTENTION, window_attention)
    model.config.text_config._attn_implementation = DECODER_ATTENTION
    model.config.audio_config._attn_implementation = ENCODER_ATTENTION
