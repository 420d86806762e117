"""Decode attention that reads only the live part of the KV cache (split-KV, as FlashDecoding does).

One new token per row attends to the cache slots [start of the row's prompt, newest slot]: the row's left
padding and the slots not yet written are never read. Each (row, key head) is one program per split of the
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


def available(device) -> bool:
    if device.type != "cuda":
        return False
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def decode_attention(query, keys, values, starts, slot, scale: float):
    """query (batch, kv_heads, groups, dim): the new token's query heads, packed by key head; keys/values
    (batch, kv_heads, slots, dim); starts (batch,) int: each row's first real slot; slot (1,) int: the newest
    slot (its keys already written). Returns (batch, kv_heads, groups, dim)."""
    import torch

    split_kernel, combine_kernel = _kernels()
    batch, kv_heads, groups, dim = query.shape
    splits = _splits(batch * kv_heads, keys.shape[2], query.device)
    split_len = BLOCK_N * math.ceil(keys.shape[2] / splits / BLOCK_N)
    partial = torch.empty(batch * kv_heads, splits, GROUP_PAD, dim, device=query.device, dtype=torch.float32)
    peak = torch.empty(batch * kv_heads, splits, GROUP_PAD, device=query.device, dtype=torch.float32)
    total = torch.empty_like(peak)
    split_kernel[(batch * kv_heads, splits)](
        query, keys, values, starts, slot, partial, peak, total,
        *query.stride()[:3], *keys.stride()[:3], *values.stride()[:3],
        scale * 1.4426950408889634, split_len,  # exp2 below: the scale carries log2(e)
        KV_HEADS=kv_heads, GROUPS=groups, GP=GROUP_PAD, DIM=dim, BLOCK=BLOCK_N, SPLITS=splits,
        IEEE=query.dtype == torch.float32,  # float32 in float32, not TF32: the same tokens as the library
    )
    out = torch.empty_like(query)
    combine_kernel[(batch * kv_heads, groups)](
        partial, peak, total, out, *out.stride()[:3], KV_HEADS=kv_heads, GP=GROUP_PAD, DIM=dim, SPLITS=splits,
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
def _kernels():
    import triton
    import triton.language as tl

    @triton.jit
    def split_kernel(Q, K, V, Starts, Slot, Partial, Peak, Total,
                     q_b, q_h, q_g, k_b, k_h, k_n, v_b, v_h, v_n, scale, split_len,
                     KV_HEADS: tl.constexpr, GROUPS: tl.constexpr, GP: tl.constexpr, DIM: tl.constexpr,
                     BLOCK: tl.constexpr, SPLITS: tl.constexpr, IEEE: tl.constexpr):
        program = tl.program_id(0)
        split = tl.program_id(1)
        row = program // KV_HEADS
        head = program % KV_HEADS
        lo = tl.maximum(tl.load(Starts + row).to(tl.int32), split * split_len)
        hi = tl.minimum(tl.load(Slot).to(tl.int32) + 1, (split + 1) * split_len)
        groups = tl.arange(0, GP)
        dims = tl.arange(0, DIM)
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
