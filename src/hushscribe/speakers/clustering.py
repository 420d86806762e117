"""Speakers among window embeddings: agglomerative clustering, average linkage on cosine similarity, in numpy.

With N speakers it stops at N clusters; with "auto" it stops when the two closest clusters are less alike than
MERGE_SIMILARITY, which also answers one speaker (spectral clustering's eigengap cannot say "one"). GE2E window
embeddings are noisy but speakers form tight groups; average linkage needs one threshold, measured on the built
conversations and the real recordings together (see tests/test_speakers.py and bench/speakers.py).

Only steady windows are clustered: a window whose first and second halves sound like different voices (it straddles a
change of speaker, or two people talk at once) lies between the speakers and, under average linkage, pulls them
together; in a meeting room, where voices are alike, that merged everyone into one. The UNSTEADY_SHARE of windows
whose halves agree least are left out of clustering; they still get a speaker (the nearest centre) in the turns.

A long recording is clustered on at most MAX_CLUSTERED windows spread evenly over it; every window then goes to its
nearest cluster centre, so the cost stays bounded (O(MAX_CLUSTERED²))."""

from __future__ import annotations

import numpy as np

MERGE_SIMILARITY = 0.62  # "auto": clusters at least this alike (average cosine) are one speaker (measured: 0.60-0.64)
MIN_SPEAKER_WINDOWS = 3  # "auto": a cluster of fewer windows, or a smaller share of them all, is no speaker
MIN_SPEAKER_SHARE = 0.05
MAX_CLUSTERED = 1000  # windows clustered directly; the rest join their nearest centre
UNSTEADY_SHARE = 1 / 3  # of the windows whose halves can be compared, those whose halves agree least: not clustered


def agglomerate(embeddings: np.ndarray, count: int | None, threshold: float | None = None) -> np.ndarray:
    """Cluster labels 0..k-1 by average-linkage agglomeration on cosine similarity: down to `count` clusters, or
    (count None) until no two clusters are at least `threshold` alike on average."""
    threshold = MERGE_SIMILARITY if threshold is None else threshold
    n = len(embeddings)
    similarity = (embeddings @ embeddings.T).astype(np.float64)
    np.fill_diagonal(similarity, -np.inf)
    sizes = np.ones(n)
    members = np.arange(n)  # the cluster (its first member's row) each point belongs to
    alive = np.ones(n, bool)
    clusters = n
    target = count or 1
    while clusters > target:
        flat = int(np.argmax(similarity))
        a, b = divmod(flat, n)
        if count is None and similarity[a, b] < threshold:
            break
        # Lance-Williams update for average linkage: the merged row is the size-weighted mean of the two
        merged = (sizes[a] * similarity[a] + sizes[b] * similarity[b]) / (sizes[a] + sizes[b])
        similarity[a], similarity[:, a] = merged, merged
        similarity[b], similarity[:, b] = -np.inf, -np.inf
        similarity[a, a] = -np.inf
        sizes[a] += sizes[b]
        alive[b] = False
        members[members == b] = a
        clusters -= 1
    _, labels = np.unique(members, return_inverse=True)
    return labels


def steady_windows(windows: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
    """Which windows ((first frame, end frame) rows) to cluster on: all but the UNSTEADY_SHARE whose halves agree
    least, a window's halves being heard by the two windows of its length that start half a window before and after
    it (they share no audio with each other). Windows without both neighbours (short spans, span edges) are kept."""
    index = {(int(a), int(b)): i for i, (a, b) in enumerate(windows)}
    agreement = np.full(len(windows), np.nan)
    for i, (a, b) in enumerate(windows):
        half = (int(b) - int(a)) // 2
        before, after = index.get((a - half, b - half)), index.get((a + half, b + half))
        if before is not None and after is not None:
            agreement[i] = embeddings[before] @ embeddings[after]
    known = ~np.isnan(agreement)
    if not known.any():
        return np.ones(len(windows), bool)
    return ~(agreement < np.quantile(agreement[known], UNSTEADY_SHARE))


def cluster_centres(embeddings: np.ndarray, count: int | None, steady: np.ndarray | None = None) -> np.ndarray:
    """(k, 256) unit centres of the speakers among `embeddings` (k = count, or found when count is None), clustered
    on the `steady` ones (a boolean mask; all when None)."""
    embeddings = embeddings if steady is None else embeddings[steady]
    stride = -(-len(embeddings) // MAX_CLUSTERED)
    sample = embeddings[::stride]
    count = min(count, len(sample)) if count else None
    labels = agglomerate(sample, count)
    sizes = np.bincount(labels)
    # "auto": a handful of windows alone is no speaker (windows that straddle a change of speaker, noise);
    # they join the nearest real speaker below
    keep = sizes >= max(MIN_SPEAKER_WINDOWS, MIN_SPEAKER_SHARE * len(sample)) if count is None else sizes > 0
    keep[np.argmax(sizes)] = True
    centres = np.stack([sample[labels == k].mean(axis=0) for k in np.flatnonzero(keep)])
    for _ in range(3):  # a few k-means steps over every window settle the centres
        nearest = np.argmax(embeddings @ _unit(centres).T, axis=1)
        centres = np.stack([embeddings[nearest == k].mean(axis=0) if np.any(nearest == k) else centres[k]
                            for k in range(len(centres))])
    return _unit(centres)


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
