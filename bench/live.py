"""Live captions benchmark (issue 18): streams fed in real time, timestamps logged on both sides.

    python bench/live.py --engine whisper --streams 1,2 --threads 2       # CPU: embedded Whisper base, int8
    python bench/live.py --engine qwen-random --streams 1,16,32,64,96     # GPU: true-size Qwen3-ASR 1.7B, random bf16
    python bench/live.py --engine qwen-tiny --streams 1,2                 # tiny random checkpoint: a correctness smoke

Each of N streams is a thread that feeds 100 ms chunks as they arrive on the wall clock (a chunk arrives at the
stream's start + its end time; a thread still busy with a recognition feeds what arrived meanwhile in one piece, as a
microphone's buffer would hold it). All recognizers share one `BatchingEngine` over one engine, as the server serves
many streams. Streams start spread over one recognition step (`live.STEP_S`) and play the shared clips (bench/cpu.py's
manifest) one after another, each to a new `LiveRecognizer` (a new call on the same line) with 0.5 s of room tone
before it and 1-2 s after it: white noise at the clip's noise floor (5th-percentile frame level). The clips come from
rooms up to 50 dB apart, and the live VAD weighs loudness against the floor of the audio it holds: one recognizer
across clips, with the background 25 dB louder after a pause than before it, kept an utterance open across the pause
(2 of 51 utterances in a first run), which is the stream's construction, not live captioning. Digital silence would
make every frame of a clip louder than the floor, and so speech to the VAD's loudness rule. Whisper streams are told
each clip's language (as cpu.py's hushscribe row: zh-en as zh); Qwen streams detect it.

Timestamps on the sender's side: where each clip lies in the stream, and its speech (Silero on the clip alone, no
padding). On the receiver's side: the wall time at which feed() or finish() returned each caption. Figures:

- heard → shown: for every 100 ms chunk that holds speech, the wall time of the first caption with text (committed
  or tentative) whose [start, end] covers the chunk's end, minus the time the chunk had arrived. A chunk that no
  caption with text ever covers is `missed`.
- last speech → committed: for each utterance closed by a pause (not by finish() where a recognizer stops, nor at
  `live.MAX_UTTERANCE_S`), the wall time of its final caption minus the arrival of the end of the last speech inside
  it. It cannot be less than `live.END_PAUSE_S`, the silence that ends an utterance, so the target is judged on
  utterance end → committed: the same less END_PAUSE_S, from the moment the end could be known.
- backlog: the longest that arrived audio waited before feed() took it (real time kept: it stays near one step).
- A stream count meets issue 18's targets when, on the GPU, every stream's heard → shown median is ≤ 0.8 s and its
  p95 ≤ 1.5 s, and the median utterance end → committed over all streams is ≤ 0.5 s; with Whisper on the CPU, when
  every stream's heard → shown median is ≤ 2.5 s.
- accuracy (Whisper): each clip's live transcript (the committed text of the finals that overlap it most) against
  the manifest and against the offline transcript (`Transcriber.transcribe` of the clip, told the same language).

qwen-random: the GPU rows' workload (bench/bench.py): true-size architecture, random bf16 weights, the decode step
compiled (`engine.fuse()`), exactly 5 new tokens per second of audio. Random weights write token ids outside the
small test tokenizer, so each recognition's text is replaced by a stand-in that grows with the audio (one word per
0.4 s, the same words every time, so that hypotheses agree as a real model's do); the GPU work is untouched.
Results: bench/results/live-DATE-MACHINE-ENGINE.json, and a markdown table.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import os
import platform
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cpu import LANGUAGE_GROUPS, load_manifest

from hushscribe import live, vad
from hushscribe.audio import SAMPLE_RATE, decode
from hushscribe.engines.batching import BatchingEngine
from hushscribe.live import Caption, LiveRecognizer
from hushscribe.options import TranscribeOptions
from hushscribe.text import join_texts

CHUNK = SAMPLE_RATE // 10  # 100 ms, as a microphone delivers it
LEAD_S = 0.5  # room tone before each clip
TAIL_S = (1.0, 2.0)  # room tone after each clip: its last utterance closes by a pause before the next clip
WORDS_PER_SECOND = 2.5  # the stand-in text of random weights
SEED = 0
GPU_TARGETS = {"heard_to_shown_median_s": 0.8, "heard_to_shown_p95_s": 1.5, "end_to_committed_median_s": 0.5}
TARGETS = {"whisper": {"heard_to_shown_median_s": 2.5}, "qwen-random": GPU_TARGETS, "qwen-tiny": GPU_TARGETS}
DEFAULT_SECONDS = {"whisper": None, "qwen-tiny": 20.0, "qwen-random": 40.0}  # None: every clip once


@dataclasses.dataclass(frozen=True)
class Clip:
    file: str
    language: str
    text: str
    samples: np.ndarray
    speech: list[tuple[float, float]]  # seconds into the clip: Silero on the clip alone, unpadded
    floor_db: float  # 5th-percentile frame level


@dataclasses.dataclass(frozen=True)
class Session:
    """One LiveRecognizer's share of a stream: samples start-end, told `language` (None: detected)."""

    language: str | None
    start: int
    end: int


@dataclasses.dataclass
class Plan:
    """What one stream plays, and what the sender knows about it."""

    audio: np.ndarray
    clips: list[tuple[float, Clip]]  # (stream seconds, clip)
    sessions: list[Session]

    def speech(self) -> list[tuple[float, float]]:
        return [(at + a, at + b) for at, clip in self.clips for a, b in clip.speech]


@dataclasses.dataclass(frozen=True)
class Shown:
    """A caption as the stream's user saw it: times in stream seconds, `wall` when it came back."""

    wall: float
    start: float
    end: float
    committed: str
    text: str
    final: bool
    utterance: tuple[int, int]  # (session, utterance)
    at_finish: bool


@dataclasses.dataclass
class StreamLog:
    t0: float  # wall time of stream second 0
    shown: list[Shown] = dataclasses.field(default_factory=list)
    backlog_s: float = 0.0
    feed_s: float = 0.0  # inside feed() and finish()
    engine_s: float = 0.0  # of which waiting for recognitions


def load_clips(audio_dir: Path) -> list[Clip]:
    clips = []
    for row in load_manifest(audio_dir):
        samples = decode(row["path"])
        spans = vad.speech_spans(vad.activity(samples), len(samples), vad.VadOptions(pad_s=0.0))
        clips.append(Clip(row["file"], row["lang"], row["text"], samples, [(s.start_s, s.end_s) for s in spans],
                          float(np.percentile(vad.frame_levels_db(samples), 5))))
    return clips


def told(language: str) -> str:
    return "zh" if language == "zh-en" else language  # as cpu.py's hushscribe row


def room_tone(floor_db: float, seconds: float, rng: np.random.Generator) -> np.ndarray:
    return (rng.standard_normal(round(seconds * SAMPLE_RATE)) * 10 ** (floor_db / 20)).astype(np.float32)


def build_plan(playlist: list[Clip], rng: np.random.Generator, tell_language: bool) -> Plan:
    """The clips one after another, each a session of its own between room tone at its noise floor."""
    pieces, clips, sessions, at = [], [], [], 0
    for clip in playlist:
        lead = room_tone(clip.floor_db, LEAD_S, rng)
        tail = room_tone(clip.floor_db, rng.uniform(*TAIL_S), rng)
        pieces += [lead, clip.samples, tail]
        clips.append(((at + len(lead)) / SAMPLE_RATE, clip))
        end = at + len(lead) + len(clip.samples) + len(tail)
        sessions.append(Session(told(clip.language) if tell_language else None, at, end))
        at = end
    return Plan(np.concatenate(pieces), clips, sessions)


def playlists(clips: list[Clip], streams: int, seconds: float | None, rng: np.random.Generator) -> list[list[Clip]]:
    """Every clip once, dealt out among the streams (seconds None); else for each stream, random clips that fit."""
    if seconds is None:
        ordered = sorted(clips, key=lambda c: (told(c.language), c.file))
        return [ordered[i::streams] for i in range(streams)]
    lists = []
    for _ in range(streams):
        chosen, left = [], seconds
        while fitting := [c for c in clips if len(c.samples) / SAMPLE_RATE + LEAD_S + TAIL_S[1] <= left]:
            chosen.append(fitting[rng.integers(len(fitting))])
            left -= len(chosen[-1].samples) / SAMPLE_RATE + LEAD_S + TAIL_S[1]
        lists.append(chosen)
    return lists


class EngineView:
    """The Engine protocol, passed through to `engine`."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.name, self.model_name, self.batch_size, self.device = (engine.name, engine.model_name,
                                                                    engine.batch_size, engine.device)

    def supports_language(self, language: str) -> bool:
        return self.engine.supports_language(language)

    def language_probabilities(self, segments):
        return self.engine.language_probabilities(segments)

    def recognize(self, segments, options):
        return self.engine.recognize(segments, options)


class Waited(EngineView):
    """A stream's view of the shared engine: adds the time spent waiting for it to the stream's log."""

    def __init__(self, engine, log: StreamLog) -> None:
        super().__init__(engine)
        self.log = log

    def recognize(self, segments, options):
        start = time.perf_counter()
        try:
            return self.engine.recognize(segments, options)
        finally:
            self.log.engine_s += time.perf_counter() - start


class Logged(EngineView):
    """The real engine, under the batching queue: each batch it recognises is logged (wall start and end, segment
    seconds); with `stand_in`, the texts are replaced by stand-ins (random weights)."""

    def __init__(self, engine, stand_in: bool) -> None:
        super().__init__(engine)
        self.stand_in, self.batches = stand_in, []

    def recognize(self, segments, options):
        start = time.perf_counter()
        results = self.engine.recognize(segments, options)
        seconds = [len(s) / SAMPLE_RATE for s in segments]
        self.batches.append((start, time.perf_counter(), seconds))
        if self.stand_in:
            results = [dataclasses.replace(r, text=stand_in_text(s)) for r, s in zip(results, seconds)]
        return results


def stand_in_text(seconds: float) -> str:
    """What random weights "say" about `seconds` of audio: the same words for the same length, growing with it."""
    return " ".join(f"w{i}" for i in range(int(seconds * WORDS_PER_SECOND)))


def play(plan: Plan, engine, log: StreamLog) -> None:
    """Feed the stream's audio as it arrives on the wall clock; log every caption with the time it came back."""
    recognizer, position = None, 0
    while position < len(plan.audio):
        arrived = min(len(plan.audio), int((time.perf_counter() - log.t0) * SAMPLE_RATE) // CHUNK * CHUNK)
        if arrived <= position:
            time.sleep(max(0.0, log.t0 + (position + CHUNK) / SAMPLE_RATE - time.perf_counter()))
            continue
        index = next(i for i, s in enumerate(plan.sessions) if s.start <= position < s.end)
        session = plan.sessions[index]
        if recognizer is None:
            recognizer = LiveRecognizer(Waited(engine, log), TranscribeOptions(language=session.language))
        upto = min(arrived, session.end)
        log.backlog_s = max(log.backlog_s, time.perf_counter() - log.t0 - (position + CHUNK) / SAMPLE_RATE)
        record(log, recognizer.feed, plan.audio[position:upto], session, index)
        position = upto
        if position == session.end:
            record(log, recognizer.finish, None, session, index)
            recognizer = None


def record(log: StreamLog, call, samples, session: Session, index: int) -> None:
    start = time.perf_counter()
    captions: list[Caption] = call() if samples is None else call(samples)
    wall = time.perf_counter()
    log.feed_s += wall - start
    offset = session.start / SAMPLE_RATE
    log.shown += [Shown(wall, offset + c.start, offset + c.end, c.committed, c.text, c.final, (index, c.utterance),
                        samples is None) for c in captions]


def run_streams(plans: list[Plan], engine, step_s: float) -> list[StreamLog]:
    begin = time.perf_counter() + 0.5  # time for the threads to start
    logs = [StreamLog(begin + i * step_s / len(plans)) for i in range(len(plans))]
    threads = [threading.Thread(target=play, args=(plan, engine, log), daemon=True) for plan, log in zip(plans, logs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return logs


def heard_to_shown(plan: Plan, log: StreamLog) -> tuple[np.ndarray, int]:
    """Latency of every speech chunk (seconds), and how many chunks no caption with text covered."""
    speech = plan.speech()
    shown = [s for s in log.shown if s.text]
    walls = np.array([s.wall for s in shown])
    starts, ends = np.array([s.start for s in shown]), np.array([s.end for s in shown])
    chunk_ends = [(k + 1) / 10 for k in range(len(plan.audio) // CHUNK)
                  if any(a < (k + 1) / 10 and b > k / 10 for a, b in speech)]
    latencies, missed = [], 0
    for end in chunk_ends:
        covering = np.flatnonzero((starts < end) & (ends >= end - 1e-6))
        if len(covering):
            latencies.append(walls[covering[0]] - log.t0 - end)
        else:
            missed += 1
    return np.array(latencies), missed


def end_to_committed(plan: Plan, log: StreamLog) -> list[float]:
    speech = plan.speech()
    latencies = []
    for s in log.shown:
        if not s.final or s.at_finish or s.end - s.start >= live.MAX_UTTERANCE_S - 0.1:
            continue
        inside = [min(b, s.end) for a, b in speech if a < s.end and b > s.start]
        if inside:
            latencies.append(s.wall - log.t0 - max(inside))
    return latencies


def committed_only_grows(log: StreamLog) -> bool:
    last: dict[tuple[int, int], str] = {}
    for s in log.shown:
        if not s.committed.startswith(last.get(s.utterance, "")):
            return False
        last[s.utterance] = s.committed
    return True


def percentile(values, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if len(values) else None


def summary(plans: list[Plan], logs: list[StreamLog], batches: list, wall_s: float, targets: dict,
            bucket=None) -> dict:
    per_stream = [heard_to_shown(p, log) for p, log in zip(plans, logs)]
    heard = np.concatenate([lat for lat, _ in per_stream])
    ends = [x for p, log in zip(plans, logs) for x in end_to_committed(p, log)]
    medians = [percentile(lat, 50) for lat, _ in per_stream if len(lat)]
    p95s = [percentile(lat, 95) for lat, _ in per_stream if len(lat)]
    row = {
        "streams": len(plans), "audio_s": round(sum(len(p.audio) for p in plans) / SAMPLE_RATE, 1),
        "heard_to_shown_s": {"median": percentile(heard, 50), "p95": percentile(heard, 95),
                             "worst_stream_median": max(medians, default=None),
                             "worst_stream_p95": max(p95s, default=None), "chunks": len(heard)},
        "missed_chunks": sum(m for _, m in per_stream),
        "end_to_committed_s": {"median": percentile(ends, 50), "p95": percentile(ends, 95), "utterances": len(ends),
                               "median_after_pause": percentile(np.array(ends) - live.END_PAUSE_S, 50)},
        "max_backlog_s": round(max(log.backlog_s for log in logs), 3),
        "share_of_feed_time_waiting_for_the_engine": round(sum(g.engine_s for g in logs)
                                                           / max(1e-9, sum(g.feed_s for g in logs)), 3),
        "committed_only_grows": all(committed_only_grows(log) for log in logs),
        "finals": sum(s.final for log in logs for s in log.shown),
    }
    worst = {"heard_to_shown_median_s": max(medians, default=None), "heard_to_shown_p95_s": max(p95s, default=None),
             "end_to_committed_median_s": row["end_to_committed_s"]["median_after_pause"]}
    row["meets_targets"] = len(medians) == len(plans) and all(worst[key] is not None and worst[key] <= limit
                                                              for key, limit in targets.items())
    row["engine"] = engine_use(batches, wall_s, bucket)
    return row


def engine_use(batches: list, wall_s: float, bucket) -> dict:
    """Where the engine's time went: busy share of the wall clock, batch sizes and lengths, padding."""
    if not batches:
        return {}
    sizes = [len(s) for _, _, s in batches]
    use = {"batches": len(batches), "busy_share": round(sum(b - a for a, b, _ in batches) / wall_s, 3),
           "mean_segments": round(float(np.mean(sizes)), 1), "max_segments": max(sizes),
           "mean_batch_s": round(float(np.mean([b - a for a, b, _ in batches])), 3),
           "mean_longest_segment_s": round(float(np.mean([max(s) for _, _, s in batches])), 1),
           "mean_segment_s": round(float(np.mean([x for _, _, s in batches for x in s])), 1)}
    if bucket:  # rows padded to a bucket, every row decoding the longest's budget
        use["useful_share_of_decoded_tokens"] = round(sum(sum(s) for _, _, s in batches)
                                                      / sum(bucket(len(s)) * max(s) for _, _, s in batches), 3)
    return use


def accuracy(plans: list[Plan], logs: list[StreamLog], offline: dict[str, str]) -> dict:
    """Each clip's live transcript (the finals that overlap it most) against the manifest and against the offline
    transcript, per language group."""
    from hushscribe.scoring import error_rate

    groups: dict[str, list[tuple[Clip, str]]] = {}
    for plan, log in zip(plans, logs):
        spans = [(at, at + len(c.samples) / SAMPLE_RATE) for at, c in plan.clips]
        heard: list[list[str]] = [[] for _ in spans]
        for s in log.shown:
            if s.final and s.committed:
                overlaps = [min(b, s.end) - max(a, s.start) for a, b in spans]
                heard[int(np.argmax(overlaps))].append(s.committed)
        for (_, clip), texts in zip(plan.clips, heard):
            text = join_texts([(t, told(clip.language)) for t in texts])
            groups.setdefault(LANGUAGE_GROUPS.get(clip.language, "other"), []).append((clip, text))
    result = {}
    for group, members in sorted(groups.items()):
        refs, lives = [c.text for c, _ in members], [text for _, text in members]
        offlines = [offline[c.file] for c, _ in members]
        score = {"clips": len(members), "live": round(error_rate(refs, lives), 4),
                 "offline": round(error_rate(refs, offlines), 4),
                 "live_vs_offline": round(error_rate(offlines, lives), 4)}
        result[group] = {**score, "points": round(100 * (score["live"] - score["offline"]), 1)}
    result["per_clip"] = [{"file": c.file, "live": text, "offline": offline[c.file]}
                          for members in groups.values() for c, text in members]
    return result


def engine_for(kind: str, threads: int, work: Path) -> tuple[object, dict]:
    """The engine and what describes it (load and compile seconds, model, dtype)."""
    start = time.perf_counter()
    if kind == "whisper":
        from hushscribe.engines.whisper import WhisperEngine

        engine = WhisperEngine(threads=threads)
        return engine, {"model": "whisper base (embedded), int8, beam 5", "threads": threads,
                        "load_s": round(time.perf_counter() - start, 1)}
    from hushscribe.engines.qwen import QwenEngine
    from tests.qwen_checkpoint import build_checkpoint

    size = "tiny" if kind == "qwen-tiny" else "1.7b"
    folder = build_checkpoint(work / size, size)
    built = time.perf_counter()
    if kind == "qwen-tiny":
        engine = QwenEngine(folder, device="cpu")
        return engine, {"model": "tiny random Qwen3-ASR (tests/qwen_checkpoint.py)",
                        "load_s": round(time.perf_counter() - built, 1)}
    from bench import force_tokens

    logging.getLogger("hushscribe").setLevel(logging.ERROR)  # every forced segment "hits the token limit"
    engine = QwenEngine(folder, device="cuda")
    loaded = time.perf_counter()
    engine.fuse()
    compiled = time.perf_counter()
    force_tokens(engine)
    import torch

    return engine, {"model": "Qwen3-ASR-1.7B architecture, random weights, 5 new tokens per second of audio",
                    "dtype": str(engine.dtype).removeprefix("torch."), "gpu": torch.cuda.get_device_name(),
                    "torch": torch.__version__, "batch_size": engine.batch_size,
                    "build_s": round(built - start, 1), "load_s": round(loaded - built, 1),
                    "compile_s": round(compiled - loaded, 1)}


def count_captures(engine, captures: list) -> None:
    """Log each decode-step graph the Qwen engine captures (a new batch bucket or a longer cache)."""
    original = engine._step_graph

    def step_graph(size: int, cache_len: int):
        before, start = engine._steps.get(size), time.perf_counter()
        step = original(size, cache_len)
        if step is not before:
            captures.append({"batch": size, "cache_len": step.cache_len,
                             "seconds": round(time.perf_counter() - start, 3)})
        return step

    engine._step_graph = step_graph


def warm_up(engine, plans: list[Plan]) -> None:
    """One call at the largest batch the streams can make, of the longest utterance (its graph captured)."""
    longest = np.resize(plans[0].clips[0][1].samples, int(live.MAX_UTTERANCE_S * SAMPLE_RATE))
    from hushscribe.engines.base import RecognitionOptions

    engine.recognize([longest] * min(len(plans), engine.batch_size), RecognitionOptions(language=None))


def replayed(engine, batches: list, speech: np.ndarray) -> dict:
    """The run's shortest, median and longest batch recognised again with no stream running (the second of two
    tries, so that no graph capture is timed): what the streams' threads cost the engine's own thread."""
    from hushscribe.engines.base import RecognitionOptions

    ordered = sorted(batches, key=lambda b: b[1] - b[0])
    result = {"in_run_s": [], "alone_s": [], "segments": []}
    for start, end, seconds in (ordered[i * (len(ordered) - 1) // 2] for i in range(3)):
        segments = [np.resize(speech, int(s * SAMPLE_RATE)) for s in seconds]
        for _ in range(2):
            began = time.perf_counter()
            engine.recognize(segments, RecognitionOptions(language=None))
        result["alone_s"].append(round(time.perf_counter() - began, 3))
        result["in_run_s"].append(round(end - start, 3))
        result["segments"].append(len(seconds))
    return result


def table(report: dict) -> str:
    header = ("| streams | heard → shown, median / p95 | worst stream, median / p95 | utterance end → committed, median "
              "(from the last speech) | missed chunks | max backlog | engine busy, mean batch | meets targets |")
    lines = [f"Live captions, {report['model']}, {report['machine']}: {report['stream_s']}", "", header,
             "|---|---|---|---|---|---|---|---|"]

    def s(value) -> str:
        return "–" if value is None else f"{value:.2f}"

    for row in report["configs"].values():
        h, e, use = row["heard_to_shown_s"], row["end_to_committed_s"], row["engine"]
        lines.append(f"| {row['streams']} | {s(h['median'])} / {s(h['p95'])} s | {s(h['worst_stream_median'])} / "
                     f"{s(h['worst_stream_p95'])} s | {s(e['median_after_pause'])} s ({s(e['median'])} s) | "
                     f"{row['missed_chunks']} of {h['chunks'] + row['missed_chunks']} | {row['max_backlog_s']:.1f} s"
                     f" | {100 * use.get('busy_share', 0):.0f} %, {use.get('mean_segments', 0)} | "
                     f"{'yes' if row['meets_targets'] else 'no'} |")
    for group, score in report.get("accuracy", {}).items():
        if group != "per_clip":
            lines.append(f"- {group} ({score['clips']} clips): live {100 * score['live']:.1f} %, offline "
                         f"{100 * score['offline']:.1f} % ({score['points']:+.1f} points); live against offline "
                         f"{100 * score['live_vs_offline']:.1f} %")
    return "\n".join(lines)


def live_source() -> dict:
    """Which live.py was measured (others change it): its hash and the constants the figures depend on."""
    path = Path(live.__file__)
    return {"sha256": hashlib.sha256(path.read_bytes()).hexdigest()[:12], "STEP_S": live.STEP_S,
            "END_PAUSE_S": live.END_PAUSE_S, "MAX_UTTERANCE_S": live.MAX_UTTERANCE_S}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=sorted(DEFAULT_SECONDS), default="whisper")
    parser.add_argument("--streams", default="1", help="stream counts, comma-separated")
    parser.add_argument("--seconds", type=float, help="stream length (default: every clip once for whisper, "
                                                      "20 s for qwen-tiny, 40 s for qwen-random)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="Whisper's CPU threads")
    parser.add_argument("--audio", type=Path, default=ROOT.parent / "shared" / "audio")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    clips = load_clips(args.audio)
    with tempfile.TemporaryDirectory() as tmp:
        engine, described = engine_for(args.engine, args.threads, Path(tmp))
        report = run(args, engine, described, clips)
    print(table(report))


def run(args, engine, described: dict, clips: list[Clip]) -> dict:
    """Every stream count in turn; the report is saved after each."""
    seconds = args.seconds or DEFAULT_SECONDS[args.engine]
    whisper, qwen = args.engine == "whisper", args.engine.startswith("qwen")
    machine = described.get("gpu", f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    name = machine.replace("NVIDIA ", "").split()[0].lower() if "gpu" in described else "cpu"
    path = args.out / f"live-{date.today()}-{name}-{args.engine}.json"
    report = {"date": str(date.today()), "machine": machine, "engine": args.engine, **described,
              "live_py": live_source(), "targets": TARGETS[args.engine], "definitions": __doc__, "configs": {},
              "stream_s": "every clip once, dealt out among the streams" if seconds is None
              else f"{seconds:.0f} s of clips and pauses per stream"}
    if whisper:
        from hushscribe import Transcriber

        transcriber = Transcriber(engine)
        offline = {c.file: transcriber.transcribe(c.samples, language=told(c.language)).text for c in clips}
    captures: list = []
    bucket = None
    if qwen:
        from hushscribe.engines.qwen_decode import bucket

        count_captures(engine, captures)
    logged = Logged(engine, stand_in=args.engine == "qwen-random")
    shared = BatchingEngine(logged)
    for streams in [int(n) for n in args.streams.split(",")]:
        rng = np.random.default_rng(SEED + streams)
        plans = [build_plan(p, rng, whisper) for p in playlists(clips, streams, seconds, rng)]
        if qwen:
            warm_up(engine, plans)
        logged.batches.clear()
        captures.clear()
        started = time.perf_counter()
        logs = run_streams(plans, shared, live.STEP_S)
        row = summary(plans, logs, logged.batches, time.perf_counter() - started, TARGETS[args.engine], bucket)
        row["graph_captures"] = list(captures)
        row["load_average"] = [round(x, 2) for x in os.getloadavg()]  # at its end, the bench itself included
        if args.engine == "qwen-random":
            row["engine"]["replayed"] = replayed(engine, logged.batches, clips[0].samples)
        if whisper:
            report["accuracy" if streams == 1 else f"accuracy_{streams}_streams"] = accuracy(plans, logs, offline)
        report["configs"][str(streams)] = row
        print(json.dumps({str(streams): row}), flush=True)
        args.out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")  # a run cut short keeps what it did
    print(f"saved {path}")
    return report


if __name__ == "__main__":
    main()
