"""Qwen3-ASR's audio encoder, our own forward over the model's weights (as qwen_decode does for the text
decoder): the same arithmetic as transformers' Qwen3ASREncoder and projector, arranged for speed.

- Mel frames are cut into 1 s chunks and each chunk goes through three stride-2 convolutions with 480
  channels: for a batch of 120 × 30 s the first one's output is 11 GB, so its layout matters. The first
  convolution has one input channel: its 9 taps are one matrix product (bias included) that writes
  channels last, the layout the other two convolutions then run in, with no layout conversions and the
  GELUs in place. Chunks that are all padding are left out.
- The transformer layers attend within windows of 104 tokens (8 s). On a GPU one Triton program per
  (window, head) attends to its window in one block (qwen_kernels.window_attention); elsewhere the
  windows are padded into one batch for SDPA with a key mask.
- q/k/v are one matrix product, the model's three weights joined (its Linear layers keep views).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from hushscribe.engines import qwen_kernels
from hushscribe.engines.qwen_decode import _join
from hushscribe.engines.qwen_inputs import convolved


class EncoderLayer(NamedTuple):
    norm1: tuple[torch.Tensor, torch.Tensor]
    qkv: torch.Tensor
    qkv_bias: torch.Tensor
    out: torch.Tensor
    out_bias: torch.Tensor
    norm2: tuple[torch.Tensor, torch.Tensor]
    fc1: torch.Tensor
    fc1_bias: torch.Tensor
    fc2: torch.Tensor
    fc2_bias: torch.Tensor


class FrontEnd(NamedTuple):
    taps: torch.Tensor  # the first convolution's weight as (channels, 16): its 9 taps, zero-padded
    convs: tuple[tuple[torch.Tensor, torch.Tensor], ...]  # (weight channels last, bias) of all three
    projection: torch.Tensor  # conv_out, no bias
    positions: torch.Tensor  # sinusoids, (max positions, d_model)


class AudioEncoder:
    """`encoder(features, mask)`: the projected audio embeddings of a batch, packed: (real tokens, output
    dim), in order, as `get_audio_features(...).pooler_output` gives them."""

    def __init__(self, model) -> None:
        tower, projector = model.model.audio_tower, model.model.multi_modal_projector
        config = tower.config
        self.chunk = 2 * config.n_window  # mel frames per convolution chunk
        self.windows_per_chunk = config.n_window_infer // self.chunk
        self.heads = config.encoder_attention_heads
        self.eps = tower.ln_post.eps  # every layer norm of the encoder has the default
        if config.activation_function != "gelu":
            raise ValueError(f"Qwen3-ASR audio encoder with activation {config.activation_function!r}: "
                             "hushscribe knows only 'gelu'")
        convs = (tower.conv2d1, tower.conv2d2, tower.conv2d3)
        first = tower.conv2d1.weight
        self.front = FrontEnd(F.pad(first.reshape(len(first), -1), (0, TAPS - first[0].numel())),
                              tuple((c.weight.contiguous(memory_format=torch.channels_last), c.bias) for c in convs),
                              tower.conv_out.weight, tower.positional_embedding.positional_embedding)
        self.layers = [_joined_layer(layer) for layer in tower.layers]
        self.post = (tower.ln_post.weight, tower.ln_post.bias)
        self.projector = (projector.linear_1.weight, projector.linear_1.bias, projector.linear_2.weight,
                          projector.linear_2.bias)
        self.kernels = qwen_kernels.available(self.post[0].device)

    def __call__(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, mels, frames = features.shape
        chunks = frames // self.chunk
        chunk_frames = mask.view(batch, chunks, self.chunk).sum(-1).reshape(-1)
        kept = chunk_frames > 0  # a chunk of padding only gives no token
        chunked = features.view(batch, mels, chunks, self.chunk).permute(0, 2, 1, 3).reshape(-1, 1, mels, self.chunk)
        tokens_per_chunk = convolved(chunk_frames[kept])
        hidden = front_end(chunked[kept], self.front)  # (kept chunks, tokens of a full chunk, d_model)
        valid = torch.arange(hidden.shape[1], device=hidden.device) < tokens_per_chunk[:, None]
        hidden = hidden.reshape(-1, hidden.shape[-1])[valid.flatten()]
        bounds, widest = self._windows(convolved(chunk_frames).view(batch, chunks).sum(-1),
                                       int(tokens_per_chunk.max()))
        attend = self._window_kernel(bounds, widest) if self.kernels else _padded_windows(bounds, widest)
        for layer in self.layers:
            q, k, v = before_attention(hidden, layer, self.heads, self.eps)
            hidden = after_attention(hidden, attend(q, k, v), layer, self.eps)
        hidden = F.layer_norm(hidden, hidden.shape[-1:], *self.post, self.eps)
        first, first_bias, second, second_bias = self.projector
        return F.linear(F.gelu(F.linear(hidden, first, first_bias)), second, second_bias)

    def _windows(self, tokens: torch.Tensor, full_chunk: int) -> tuple[torch.Tensor, int]:
        """Where the attention windows start and end in the packed tokens: each segment's tokens cut every
        `windows_per_chunk` chunks' worth (the window of a full chunk's tokens, as transformers has it)."""
        width = full_chunk * self.windows_per_chunk
        lengths = []
        for count in tokens.tolist():
            lengths += [width] * (count // width) + ([count % width] if count % width else [])
        bounds = torch.tensor([0, *lengths], device=tokens.device).cumsum(0, dtype=torch.int32)
        return bounds, max(lengths)

    def _window_kernel(self, bounds, widest):
        return lambda q, k, v: qwen_kernels.window_attention(q, k, v, bounds, widest)


TAPS = 16  # the first convolution's 3 × 3 taps, padded to a width that tensor cores take


def front_end(chunks, front: FrontEnd):
    """(chunks, 1, mels, frames) → (chunks, tokens, d_model): three convolutions (kernel 3, stride 2,
    padding 1) with GELU, the channels and frequencies of each time step flattened and projected, the
    sinusoid positions added."""
    count, _, mels, frames = chunks.shape
    taps = F.unfold(chunks, 3, padding=1, stride=2).transpose(1, 2)  # (chunks, positions, 9)
    x = F.linear(F.pad(taps, (0, TAPS - taps.shape[-1])), front.taps, front.convs[0][1])
    x = torch.ops.aten.gelu_(x).view(count, (mels + 1) // 2, (frames + 1) // 2, -1).permute(0, 3, 1, 2)
    for weight, bias in front.convs[1:]:  # x is channels last: so are these convolutions
        x = torch.ops.aten.gelu_(F.conv2d(x, weight, bias, stride=2, padding=1))
    count, channels, bins, steps = x.shape
    x = F.linear(x.permute(0, 3, 1, 2).reshape(count, steps, channels * bins), front.projection)
    return x + front.positions[:steps].to(x.dtype)


def before_attention(hidden, layer: EncoderLayer, heads: int, eps: float):
    """(tokens, d_model) → q, k, v, each (tokens, heads, head_dim)."""
    x = F.layer_norm(hidden, hidden.shape[-1:], *layer.norm1, eps)
    q, k, v = F.linear(x, layer.qkv, layer.qkv_bias).view(hidden.shape[0], 3, heads, -1).unbind(1)
    return q, k, v


def after_attention(hidden, attended, layer: EncoderLayer, eps: float):
    hidden = hidden + F.linear(attended.reshape(hidden.shape), layer.out, layer.out_bias)
    x = F.layer_norm(hidden, hidden.shape[-1:], *layer.norm2, eps)
    hidden = hidden + F.linear(F.gelu(F.linear(x, layer.fc1, layer.fc1_bias)), layer.fc2, layer.fc2_bias)
    if hidden.dtype == torch.float16:  # as transformers does
        limit = torch.finfo(torch.float16).max - 1000
        hidden = hidden.clamp(-limit, limit)
    return hidden


def _padded_windows(bounds: torch.Tensor, widest: int):
    """Attention within windows by SDPA: the packed windows padded into one (windows, heads, widest, dim)
    batch, the padding masked as keys."""
    starts, lengths = bounds[:-1].long(), (bounds[1:] - bounds[:-1]).long()
    offsets = torch.arange(widest, device=bounds.device)
    valid = offsets[None] < lengths[:, None]  # (windows, widest)
    index = (starts[:, None] + offsets[None]).clamp(max=int(bounds[-1]) - 1)
    rows = torch.nonzero(valid.flatten(), as_tuple=True)[0]  # valid slots in order are the packed tokens

    def attend(q, k, v):
        out = F.scaled_dot_product_attention(*(x[index].transpose(1, 2) for x in (q, k, v)),
                                             attn_mask=valid[:, None, None, :])
        return out.transpose(1, 2).reshape(-1, *q.shape[1:])[rows]

    return attend


def _joined_layer(layer) -> EncoderLayer:
    attention = layer.self_attn
    qkv, qkv_bias = _join(attention.q_proj, attention.k_proj, attention.v_proj)
    return EncoderLayer((layer.self_attn_layer_norm.weight, layer.self_attn_layer_norm.bias), qkv, qkv_bias,
                        attention.out_proj.weight, attention.out_proj.bias,
                        (layer.final_layer_norm.weight, layer.final_layer_norm.bias), layer.fc1.weight,
                        layer.fc1.bias, layer.fc2.weight, layer.fc2.bias)
