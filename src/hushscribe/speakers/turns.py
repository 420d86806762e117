"""From window scores to speaker turns.

Every 10 ms frame of speech takes the speaker whose centre is closest to the mean score of the windows covering it;
runs shorter than MIN_TURN_S are given to their neighbours. Speakers are numbered S1, S2, … in order of first
appearance."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from hushscribe.speakers.features import FRAME_S

MIN_TURN_S = 0.3  # shorter runs of one speaker inside speech are taken as noise


@dataclass(frozen=True)
class Turn:
    start: float  # seconds
    end: float
    speaker: str  # "S1", "S2", … in order of first appearance


def speaker_id(index: int) -> str:
    """The id of the speaker who spoke `index`-th (0-based) for the first time."""
    return f"S{index + 1}"


def frame_turns(spans: list[tuple[int, int]], windows: np.ndarray, scores: np.ndarray) -> list[Turn]:
    """Turns from per-window speaker scores: each speech frame takes the best mean score of the windows covering
    it (frames no window covers take the nearest window's), short runs join their neighbours, speakers are
    renumbered by first appearance."""
    end = int(max(windows[:, 1].max(), max(e for _, e in spans)))
    k = scores.shape[1]
    total = np.zeros((end + 1, k))
    np.add.at(total, windows[:, 0], scores)
    np.add.at(total, windows[:, 1], -scores)
    covered = np.zeros(end + 1)
    np.add.at(covered, windows[:, 0], 1)
    np.add.at(covered, windows[:, 1], -1)
    total, covered = np.cumsum(total, axis=0)[:end], np.cumsum(covered)[:end]
    centres = (windows[:, 0] + windows[:, 1]) / 2
    runs: list[list] = []  # [first frame, end frame, speaker index]
    for first, last in spans:
        if last <= first:
            continue
        frames = np.arange(first, last)
        mean = total[first:last] / np.maximum(covered[first:last], 1)[:, None]
        bare = covered[first:last] < 0.5
        if np.any(bare):
            nearest = np.abs(centres[None, :] - frames[bare][:, None]).argmin(axis=1)
            mean[bare] = scores[nearest]
        labels = np.argmax(mean, axis=1)
        cuts = np.flatnonzero(np.diff(labels)) + 1
        for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(labels)]):
            runs.append([first + a, first + b, int(labels[a])])
    runs = _absorb_short(runs, round(MIN_TURN_S / FRAME_S))
    order: dict[int, str] = {}
    turns: list[Turn] = []
    for first, last, label in runs:
        speaker = order.setdefault(label, speaker_id(len(order)))
        if turns and turns[-1].speaker == speaker and first * FRAME_S - turns[-1].end < 1e-6:
            turns[-1] = replace(turns[-1], end=last * FRAME_S)
        else:
            turns.append(Turn(first * FRAME_S, last * FRAME_S, speaker))
    return turns


def _absorb_short(runs: list[list], min_frames: int) -> list[list]:
    """Give a run shorter than `min_frames` that touches another run to its longer touching neighbour."""
    changed = True
    while changed:
        changed = False
        for i, (first, last, _) in enumerate(runs):
            if last - first >= min_frames:
                continue
            touching = [j for j in (i - 1, i + 1) if 0 <= j < len(runs)
                        and (runs[j][1] == first or runs[j][0] == last)]
            if not touching:
                continue
            j = max(touching, key=lambda j: runs[j][1] - runs[j][0])
            runs[j] = [min(runs[j][0], first), max(runs[j][1], last), runs[j][2]]
            del runs[i]
            changed = True
            break
    return runs
