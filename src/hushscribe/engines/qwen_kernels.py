"""Attention kernels: the text decoder's prefill and new tokens, the audio encoder's windows.

Prefill (`prefill_attention`): causal attention over a left-padded prompt, as FlashAttention computes it
(blocks of queries against blocks of keys, a running maximum and sum, nothing of size length² in memory).
Each row's keys start at its first real position, so the padding needs no mask in memory; the library's
SDPA with such a mask falls back to a kernel that took 49 ms of the hour's 340 ms prefill (H200, 1.7B).

Encoder windows (`window_attention`): each window of packed tokens (104 for 8 s) attends to itself in one
block, a program per (window, head), with no copy of the tokens into padded windows.

Decode (`decode_attention`): reads only the live part of the KV cache (split-KV, as FlashDecoding does).

One new token per row attends to the cache slots [start of the row's prompt, newest slot]: the row's left
padding and the slots not yet written are never read. The kernel writes the new token's keys and values into
the newest slot itself (the program whose split holds it, before it reads), which saved two copy kernels per
layer and step. Each (row, key head) is one program per split of the
cache; a split keeps a running maximum, sum and weighted values over blocks of BLOCK_N slots, and a second
kernel combines the splits. The query heads that share a key head are rows of one matrix product (padded to
16, the smallest that tensor cores take), so the cache is read once per key head. The bounds are read on the
device, so one launch serves every step of a captured CUDA graph.

Written in Triton (bundled with torch's CUDA builds); without it the decoder uses SDPA over a window of slots.
"""

from __future__ import annotations

import functools
import math

BLOCK_N = 64  # cache slots per block
GROUP_PAD = 16  # query rows per key head, padded for tl.dot
BLOCK_M = 64  # prompt positions per prefill program


def available(device) -> bool:
    if device.type != "cuda":
        return False
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def decode_attention(query, key, value, keys, values, starts, slot, scale: float):
    """query (batch, kv_heads, groups, dim): the new token's query heads, packed by key head; key/value
    (batch, kv_heads, 1, dim): its keys and values, written here into the cache keys/values (batch, kv_heads,
    slots, dim) at `slot` (1,) int, the newest slot; starts (batch,) int: each row's first real slot. Returns
    (batch, kv_heads, groups, dim)."""
    import torch

    split_kernel, combine_kernel = _kernels()
    batch, kv_heads, groups, dim = query.shape
    splits = _splits(batch * kv_heads, keys.shape[2], query.device)
    split_len = BLOCK_N * math.ceil(keys.shape[2] / splits / BLOCK_N)
    partial = torch.empty(batch * kv_heads, splits, GROUP_PAD, dim, device=query.device, dtype=torch.float32)
    peak = torch.empty(batch * kv_heads, splits, GROUP_PAD, device=query.device, dtype=torch.float32)
    total = torch.empty_like(peak)
    split_kernel[(batch * kv_heads, splits)](
        query, key, value, keys, values, starts, slot, partial, peak, total,
        *query.stride()[:3], key.stride(0), key.stride(1), key.stride(3), value.stride(0), value.stride(1),
        value.stride(3), *keys.stride()[:3], *values.stride()[:3],
        scale * 1.4426950408889634, split_len,  # exp2 below: the scale carries log2(e)
        KV_HEADS=kv_heads, GROUPS=groups, GP=GROUP_PAD, DIM=dim, BLOCK=BLOCK_N, SPLITS=splits,
        IEEE=query.dtype == torch.float32,  # float32 in float32, not TF32: the same tokens as the library
    )
    out = torch.empty_like(query)
    combine_kernel[(batch * kv_heads, groups)](
        partial, peak, total, out, *out.stride()[:3], KV_HEADS=kv_heads, GP=GROUP_PAD, DIM=dim, SPLITS=splits,
    )
    return out


def prefill_attention(query, keys, values, starts, scale: float):
    """query (batch, heads, length, dim); keys/values (batch, kv_heads, length, dim), any strides along
    batch and heads; starts (batch,) int: each row's first real position. Position t of a row attends to
    the row's positions starts..t; a padding position (before its row's start) to itself only. Returns
    (batch, heads, length, dim), contiguous."""
    import torch

    kernel = _prefill_kernel()
    batch, heads, length, dim = query.shape
    out = torch.empty(batch, heads, length, dim, device=query.device, dtype=query.dtype)
    kernel[(math.ceil(length / BLOCK_M), batch * heads)](
        query, keys, values, starts, out, *query.stride()[:3], *keys.stride()[:3], *values.stride()[:3],
        *out.stride()[:3], length, scale * 1.4426950408889634,
        HEADS=heads, GROUPS=heads // keys.shape[1], DIM=dim, BLOCK_M=BLOCK_M, BLOCK=BLOCK_N,
        IEEE=query.dtype == torch.float32,
    )
    return out


def window_attention(query, keys, values, bounds, widest: int):
    """The audio encoder's attention: tokens packed back to back, windows[i] = bounds[i]..bounds[i+1], each
    token attending to every token of its window. query/keys/values (tokens, heads, dim), the last dim
    contiguous; `widest` the longest window. Returns (tokens, heads, dim)."""
    import torch
    import triton

    tokens, heads, dim = query.shape
    out = torch.empty(tokens, heads, dim, device=query.device, dtype=query.dtype)
    _window_kernel()[(len(bounds) - 1, heads)](
        query, keys, values, bounds, out, *query.stride()[:2], *keys.stride()[:2], *values.stride()[:2],
        *out.stride()[:2], dim ** -0.5 * 1.4426950408889634,
        DIM=dim, BLOCK=max(16, triton.next_power_of_2(widest)), IEEE=query.dtype == torch.float32,
    )
    return out


def _splits(programs: int, slots: int, device) -> int:
    """Splits of the cache per (row, key head): enough programs for about four per multiprocessor, a power of
    two, at most one per block of slots."""
    import torch

    processors = torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else 132
    wanted = max(1, math.ceil(4 * processors / programs))
    most = max(1, slots // BLOCK_N)
    return min(1 << (wanted - 1).bit_length(), 1 << (most.bit_length() - 1), 64)


@functools.cache
def _window_kernel():
    import triton
    import triton.language as tl

    @triton.jit
    def window_kernel(Q, K, V, Bounds, Out, q_t, q_h, k_t, k_h, v_t, v_h, o_t, o_h, scale,
                      DIM: tl.constexpr, BLOCK: tl.constexpr, IEEE: tl.constexpr):
        window = tl.program_id(0)
        head = tl.program_id(1)
        start = tl.load(Bounds + window)
        count = tl.load(Bounds + window + 1) - start
        rows = tl.arange(0, BLOCK)
        live = rows < count
        dims = tl.arange(0, DIM)
        at = (start + rows)[:, None]
        q = tl.load(Q + at * q_t + head * q_h + dims[None, :], mask=live[:, None], other=0.0)
        k = tl.load(K + at * k_t + head * k_h + dims[None, :], mask=live[:, None], other=0.0)
        if IEEE:
            scores = tl.dot(q, tl.trans(k), input_precision="ieee") * scale
        else:
            scores = tl.dot(q, tl.trans(k)) * scale
        scores = tl.where(live[None, :], scores, float("-inf"))
        weights = tl.exp2(scores - tl.max(scores, 1)[:, None])
        weights = weights / tl.sum(weights, 1)[:, None]
        v = tl.load(V + at * v_t + head * v_h + dims[None, :], mask=live[:, None], other=0.0)
        if IEEE:
            out = tl.dot(weights, v, input_precision="ieee")
        else:
            out = tl.dot(weights.to(v.dtype), v)
        tl.store(Out + at * o_t + head * o_h + dims[None, :], out.to(Out.dtype.element_ty), mask=live[:, None])

    return window_kernel


@functools.cache
def _prefill_kernel():
    import triton
    import triton.language as tl

    @triton.jit
    def prefill_kernel(Q, K, V, Starts, Out, q_b, q_h, q_t, k_b, k_h, k_t, v_b, v_h, v_t, o_b, o_h, o_t,
                       length, scale, HEADS: tl.constexpr, GROUPS: tl.constexpr, DIM: tl.constexpr,
                       BLOCK_M: tl.constexpr, BLOCK: tl.constexpr, IEEE: tl.constexpr):
        first = tl.program_id(0) * BLOCK_M
        row = tl.program_id(1) // HEADS
        head = tl.program_id(1) % HEADS
        kv_head = head // GROUPS
        start = tl.load(Starts + row).to(tl.int32)
        positions = first + tl.arange(0, BLOCK_M)
        dims = tl.arange(0, DIM)
        q = tl.load(Q + row * q_b + head * q_h + positions[:, None] * q_t + dims[None, :],
                    mask=positions[:, None] < length, other=0.0)
        peak = tl.full([BLOCK_M], float("-inf"), tl.float32)
        total = tl.zeros([BLOCK_M], tl.float32)
        acc = tl.zeros([BLOCK_M, DIM], tl.float32)
        lo = (tl.minimum(start, first) // BLOCK) * BLOCK  # a block of padding still sees itself
        hi = tl.minimum(first + BLOCK_M, length)
        for block in range(lo, hi, BLOCK):
            slots = block + tl.arange(0, BLOCK)
            k = tl.load(K + row * k_b + kv_head * k_h + slots[:, None] * k_t + dims[None, :],
                        mask=slots[:, None] < length, other=0.0)
            if IEEE:
                scores = tl.dot(q, tl.trans(k), input_precision="ieee") * scale
            else:
                scores = tl.dot(q, tl.trans(k)) * scale
            seen = ((slots[None, :] >= start) & (slots[None, :] <= positions[:, None])) | \
                (slots[None, :] == positions[:, None])
            scores = tl.where(seen, scores, float("-inf"))
            new_peak = tl.maximum(peak, tl.max(scores, 1))
            kept = tl.exp2(peak - new_peak)
            weights = tl.exp2(scores - new_peak[:, None])
            total = total * kept + tl.sum(weights, 1)
            v = tl.load(V + row * v_b + kv_head * v_h + slots[:, None] * v_t + dims[None, :],
                        mask=slots[:, None] < length, other=0.0)
            if IEEE:
                acc = acc * kept[:, None] + tl.dot(weights, v, input_precision="ieee")
            else:
                acc = acc * kept[:, None] + tl.dot(weights.to(v.dtype), v)
            peak = new_peak
        out = acc / total[:, None]
        tl.store(Out + row * o_b + head * o_h + positions[:, None] * o_t + dims[None, :],
                 out.to(Out.dtype.element_ty), mask=positions[:, None] < length)

    return prefill_kernel


@functools.cache
def _kernels():
    import triton
    import triton.language as tl

    @triton.jit
    def split_kernel(Q, NewK, NewV, K, V, Starts, Slot, Partial, Peak, Total,
                     q_b, q_h, q_g, nk_b, nk_h, nk_d, nv_b, nv_h, nv_d, k_b, k_h, k_n, v_b, v_h, v_n, scale, split_len,
                     KV_HEADS: tl.constexpr, GROUPS: tl.constexpr, GP: tl.constexpr, DIM: tl.constexpr,
                     BLOCK: tl.constexpr, SPLITS: tl.constexpr, IEEE: tl.constexpr):
        program = tl.program_id(0)
        split = tl.program_id(1)
        row = program // KV_HEADS
        head = program % KV_HEADS
        newest = tl.load(Slot).to(tl.int32)
        lo = tl.maximum(tl.load(Starts + row).to(tl.int32), split * split_len)
        hi = tl.minimum(newest + 1, (split + 1) * split_len)
        groups = tl.arange(0, GP)
        dims = tl.arange(0, DIM)
        if (newest >= split * split_len) & (newest < (split + 1) * split_len):  # only this program reads it
            tl.store(K + row * k_b + head * k_h + newest * k_n + dims,
                     tl.load(NewK + row * nk_b + head * nk_h + dims * nk_d))
            tl.store(V + row * v_b + head * v_h + newest * v_n + dims,
                     tl.load(NewV + row * nv_b + head * nv_h + dims * nv_d))
            tl.debug_barrier()  # written by every thread of the program before any of them reads the block
        q = tl.load(Q + row * q_b + head * q_h + groups[:, None] * q_g + dims[None, :],
                    mask=groups[:, None] < GROUPS, other=0.0)
        peak = tl.full([GP], float("-inf"), tl.float32)
        total = tl.zeros([GP], tl.float32)
        acc = tl.zeros([GP, DIM], tl.float32)
        for start in range(lo, hi, BLOCK):
            slots = start + tl.arange(0, BLOCK)
            live = slots < hi
            k = tl.load(K + row * k_b + head * k_h + slots[:, None] * k_n + dims[None, :], mask=live[:, None],
                        other=0.0)
            if IEEE:
                scores = tl.dot(q, tl.trans(k), input_precision="ieee") * scale
            else:
                scores = tl.dot(q, tl.trans(k)) * scale
            scores = tl.where(live[None, :], scores, float("-inf"))
            new_peak = tl.maximum(peak, tl.max(scores, 1))
            kept = tl.exp2(peak - new_peak)
            weights = tl.exp2(scores - new_peak[:, None])
            total = total * kept + tl.sum(weights, 1)
            v = tl.load(V + row * v_b + head * v_h + slots[:, None] * v_n + dims[None, :], mask=live[:, None],
                        other=0.0)
            if IEEE:
                acc = acc * kept[:, None] + tl.dot(weights, v, input_precision="ieee")
            else:
                acc = acc * kept[:, None] + tl.dot(weights.to(v.dtype), v)
            peak = new_peak
        at = (program * SPLITS + split) * GP + groups
        tl.store(Partial + at[:, None] * DIM + dims[None, :], acc)
        tl.store(Peak + at, peak)
        tl.store(Total + at, total)

    @triton.jit
    def combine_kernel(Partial, Peak, Total, Out, o_b, o_h, o_g,
                       KV_HEADS: tl.constexpr, GP: tl.constexpr, DIM: tl.constexpr, SPLITS: tl.constexpr):
        program = tl.program_id(0)
        group = tl.program_id(1)
        row = program // KV_HEADS
        head = program % KV_HEADS
        at = (program * SPLITS + tl.arange(0, SPLITS)) * GP + group
        peak = tl.load(Peak + at)
        highest = tl.max(peak, 0)
        weight = tl.where(peak > float("-inf"), tl.exp2(peak - highest), 0.0)  # an empty split weighs nothing
        dims = tl.arange(0, DIM)
        acc = tl.load(Partial + at[:, None] * DIM + dims[None, :])
        out = tl.sum(acc * weight[:, None], 0) / tl.sum(tl.load(Total + at) * weight, 0)
        tl.store(Out + row * o_b + head * o_h + group * o_g + dims, out.to(Out.dtype.element_ty))

    return split_kernel, combine_kernel
