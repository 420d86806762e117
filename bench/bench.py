"""hushscribe's speed benchmark: one command, one table.

    python bench/bench.py                 # GPU section where there is a CUDA GPU, then the CPU section
    python bench/bench.py --skip-cpu      # GPU only;  --skip-gpu: CPU only (same as bench/cpu.py)

GPU section (Qwen3-ASR, bf16, one GPU). Real weights are not needed: the true-size architecture is
built with random weights, and every row decodes exactly the same number of new tokens, 5 per
second of audio (150 for a 30 s segment; random weights never stop by themselves). One hour of
audio is 120 segments of 30 s of speech. Rows:

- official qwen-asr 0.0.6 (transformers backend), in its own environment (transformers 4.57.x,
  installed by this script into a private folder, from `--official-wheels DIR` when the machine
  has no internet): 30 s segments at its default batch limit, timed on one full batch of 32 (the
  hour is 3.75 such batches, so its rate on 120 would be no better); and its defaults on one
  file, which it cuts into ≤ 20 min pieces itself (timed on a 60 s file: one piece, batch 1; at
  76 ms a token a longer one costs minutes).
- plain transformers `generate()`, eager, batch 1, the library's own attention.
- hushscribe: default settings (batch chosen from free memory), and batch 1.

Columns: × realtime for the hour (rows at batch 1 are timed on 8 segments), latency of one 30 s
clip (ours: from a file on disk through decode, VAD and recognition), peak GPU memory, and
warm-up (load and graph capture; hushscribe's rows then compile the fused decode step, timed apart).
Then hushscribe end to end on a 1 h file (decode + VAD + recognise + write txt/srt/json) and the
0.6B model.

First, before anything else uses the GPU, the fresh-process rows: wall clock from process start to
the transcript on disk for a 30 s clip, each in a new process — `hushscribe transcribe` with an empty
compile cache, again with the cache the first run left, and the official package's equivalent
(bench/official_fresh.py: import, `from_pretrained`, `transcribe`, write) — with the same number of
new tokens on both sides; and the bare import of torch, transformers and hushscribe, so that what is
ours shows apart from what the machine's disk costs. `--fresh-only` runs just these.
Results go to bench/results/gpu-DATE-GPU.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hushscribe.audio import SAMPLE_RATE, decode  # noqa: E402

TOKENS_PER_SECOND = 5
SEGMENTS = 120  # 30 s segments in an hour
OFFICIAL_SEGMENTS = 32  # one batch at the official default limit
OFFICIAL_FILE_S = 60
BATCH1_SEGMENTS = 8
API_CLIENTS = 64
LATENCY_RUNS = 5  # one run of a quarter second varies by ±10 % from run to run


def speech(seconds: float) -> np.ndarray:
    """Real speech of the bundled samples, repeated with short pauses to `seconds`."""
    pause = np.zeros(SAMPLE_RATE // 2, np.float32)
    unit = np.concatenate([decode(ROOT / "samples" / "jfk.flac"), pause,
                           decode(ROOT / "samples" / "aishell_zh.wav"), pause])
    return np.resize(unit, int(seconds * SAMPLE_RATE))


def synced():
    import torch

    torch.cuda.synchronize()
    return time.perf_counter()


def timed_row(run, audio_s: float) -> dict:
    import torch

    torch.cuda.reset_peak_memory_stats()
    t = synced()
    run()
    seconds = synced() - t
    return {"seconds": round(seconds, 3), "audio_s": audio_s, "x_realtime": round(audio_s / seconds, 1),
            "peak_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2)}


def force_tokens(engine) -> None:
    """Every segment decodes exactly 5 new tokens per second: no stop token, a budget of 5/s."""
    from hushscribe.engines import qwen

    qwen.max_new_tokens = lambda seconds: math.ceil(TOKENS_PER_SECOND * seconds)
    engine._stop_ids = {-1}
    engine._steps.clear()  # captured with the real stop ids


def official_env(wheels: Path | None, work: Path) -> dict:
    """The environment of a subprocess that runs the official package, installed (once) into a
    private folder of `work`."""
    site = work / "official-site"
    if not site.is_dir():
        source = ["--no-index", "--find-links", str(wheels)] if wheels else []
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile", "--target",
                        str(site), *source, "-r", str(ROOT / "bench" / "official_wheels.txt")], check=True)
    return {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def official_rows(size: str, wheels: Path | None, audio: Path, work: Path) -> dict:
    """Time the official package in a subprocess, in its own environment."""
    out = work / "official.json"
    subprocess.run([sys.executable, str(ROOT / "bench" / "official_rows.py"), "--size", size, "--out", str(out),
                    "--audio", str(audio), "--segments", str(OFFICIAL_SEGMENTS),
                    "--long-seconds", str(OFFICIAL_FILE_S)], check=True, env=official_env(wheels, work))
    return json.loads(out.read_text())


def wall_clock(command: list[str], env: dict | None = None) -> tuple[float, str]:
    """Seconds from starting `command` in a new process to its exit, and what it wrote to stderr."""
    t = time.perf_counter()
    result = subprocess.run([str(part) for part in command], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if result.returncode:
        raise RuntimeError(f"{' '.join(map(str, command[:4]))}… failed:\n{result.stderr[-3000:]}")
    return round(seconds, 2), result.stderr


FRESH_WHAT = ("wall clock from process start to the transcript on disk, a 30 s FLAC of speech, true-size 1.7B "
              "random bf16 weights, -l en: `hushscribe transcribe` with HUSHSCRIBE_CACHE empty (cold) and as the "
              "cold run left it (warm); the official qwen-asr 0.0.6 (import, from_pretrained, transcribe of the "
              "decoded samples, write) forced to the same number of new tokens; import_s: a process that only "
              "imports torch, transformers, hushscribe.cli and hushscribe.engines.qwen")


def fresh_process_rows(folder: Path, work: Path, wheels: Path | None, skip_official: bool) -> dict:
    """A 30 s clip transcribed by a new process, timed from its start to the transcript on disk."""
    clip = work / "clip30.flac"
    write_flac(clip, speech(30))
    rows = {"clip_s": 30.0}
    rows["import_s"], _ = wall_clock([sys.executable, "-c", "import torch, transformers, hushscribe.cli, "
                                      "hushscribe.engines.qwen"])
    cache = work / "hushscribe-cache"  # empty for the cold run; the warm run finds what the cold one left
    for name in ("cold", "warm"):
        rows[f"{name}_s"], log = wall_clock(
            [sys.executable, "-m", "hushscribe", "transcribe", clip, "--engine", "qwen", "--model", folder,
             "-l", "en", "-f", "json", "-o", work / f"fresh-{name}", "-q", "--debug"],
            env={**os.environ, "HUSHSCRIBE_CACHE": str(cache)})
        decoded = [int(n) for n in re.findall(r"a segment decoded (\d+) new tokens", log)]
        rows["segments"], rows["new_tokens"] = len(decoded), sum(decoded)  # the same in both runs
    if not skip_official:
        env = official_env(wheels, work)
        official = work / "official-1.7b"
        subprocess.run([sys.executable, ROOT / "bench" / "official_checkpoint.py", official, "--size", "1.7b"],
                       check=True, env=env, capture_output=True)
        np.save(work / "clip30.npy", decode(clip))
        rows["official_s"], _ = wall_clock([sys.executable, ROOT / "bench" / "official_fresh.py", official,
                                         work / "clip30.npy", "--tokens", rows["new_tokens"], "--out",
                                            work / "official.txt"],
                                        env=env)
    return rows


def generate_row(folder: Path) -> dict:
    """transformers' generate(), eager, batch 1, its own sdpa attention, on our inputs."""
    import torch

    from hushscribe.engines.base import RecognitionOptions
    from hushscribe.engines.qwen import QwenEngine

    t = synced()
    engine = QwenEngine(folder, device="cuda", compile=False)
    warm = synced() - t
    engine.model.config.text_config._attn_implementation = "sdpa"
    engine.model.config.audio_config._attn_implementation = "sdpa"
    segment = speech(30)
    tokens = 30 * TOKENS_PER_SECOND

    def one():
        inputs = engine.inputs([segment], RecognitionOptions(language="en"))
        with torch.inference_mode():
            out = engine.model.generate(**inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)
        assert out.shape[1] - inputs["input_ids"].shape[1] == tokens

    one()  # warm-up
    latency = timed_row(one, 30.0)
    row = timed_row(lambda: [one() for _ in range(BATCH1_SEGMENTS)], 30.0 * BATCH1_SEGMENTS)
    row.update(latency_30s_s=latency["seconds"], warm_up_s=round(warm, 1))
    del engine
    released()
    return row


def released() -> None:
    """The last engine's GPU memory given back, so that the next row's peak is its own: an engine is freed by
    the collector (it holds reference cycles), which the engine itself no longer runs when it captures a graph."""
    import gc

    import torch

    gc.collect()
    torch.cuda.empty_cache()


def hushscribe_rows(folder: Path, work: Path, size: str) -> dict:
    from hushscribe import Transcriber
    from hushscribe import formats
    from hushscribe.engines.base import RecognitionOptions
    from hushscribe.engines.qwen import QwenEngine

    rows = {}
    t = synced()
    engine = QwenEngine(folder, device="cuda")
    warm = synced() - t
    t = synced()
    engine.fuse()  # these rows measure the fused step; a short job never waits for it (see FusePolicy)
    compile_s = synced() - t
    force_tokens(engine)
    english = RecognitionOptions(language="en")
    hour = [speech(30)] * SEGMENTS
    engine.recognize(hour, english)  # first call captures this batch size's graph
    default = timed_row(lambda: engine.recognize(hour, english), 3600.0)
    default.update(warm_up_s=round(warm, 1), compile_s=round(compile_s, 1), batch_size=engine.batch_size)
    transcriber = Transcriber(engine)
    clip = work / "clip30.flac"
    write_flac(clip, speech(30))
    transcriber.transcribe(clip, language="en")
    default["latency_30s_s"], default["latency_30s_runs_s"] = clip_latency(transcriber, clip)
    default["latency_30s_decode_vad_s"] = decode_and_vad_s(clip)  # the part of it on the CPU before recognition
    rows["default"] = default
    if size != "1.7b":
        return rows

    auto_batch, engine.batch_size = engine.batch_size, 1
    engine._steps.clear()  # drop the batch-128 graph and its KV cache: peak memory as a batch-1 user sees it
    engine._release_memory()
    engine.recognize(hour[:1], english)
    one = timed_row(lambda: engine.recognize(hour[:BATCH1_SEGMENTS], english), 30.0 * BATCH1_SEGMENTS)
    one["latency_30s_s"], one["latency_30s_runs_s"] = clip_latency(transcriber, clip)
    one["warm_up_s"] = default["warm_up_s"]
    rows["batch1"] = one
    engine.batch_size = auto_batch

    # end to end: a 1 h file on disk → decode, VAD, recognise, write three formats
    long = work / "hour.flac"
    write_flac(long, speech(3600))
    t = time.perf_counter()
    samples = decode(long)
    decode_s = time.perf_counter() - t
    from hushscribe import vad

    t = time.perf_counter()
    spans = vad.split(samples)
    vad_s = time.perf_counter() - t
    out = work / "out"
    out.mkdir()

    def end_to_end():
        transcript = transcriber.transcribe(long, language="en")
        for fmt in ("txt", "srt", "json"):
            formats.write(transcript, fmt, out / f"hour.{fmt}")

    end_to_end()  # this batch shape's graph
    e2e = timed_row(end_to_end, 3600.0)
    e2e.update(decode_s=round(decode_s, 2), vad_s=round(vad_s, 2), segments=len(spans),
               mean_segment_s=round(sum(s.duration_s for s in spans) / len(spans), 1))
    rows["end_to_end_1h"] = e2e
    try:
        rows["api"] = api_row(engine, clip, API_CLIENTS)
    except (ImportError, OSError, RuntimeError) as exc:  # the server extra missing, or a port: the other rows stand
        rows["api"] = {"error": repr(exc)}
    del engine, transcriber
    released()
    return rows


def clip_latency(transcriber, clip: Path) -> tuple[float, list[float]]:
    """The 30 s clip transcribed LATENCY_RUNS times, warm: the median seconds, and every run's."""
    runs = [timed_row(lambda: transcriber.transcribe(clip, language="en"), 30.0)["seconds"]
            for _ in range(LATENCY_RUNS)]
    return sorted(runs)[len(runs) // 2], runs


def decode_and_vad_s(clip: Path) -> float:
    """Seconds to decode `clip` and find its speech segments, as a transcription does before recognising."""
    from hushscribe.transcriber import prepare

    t = time.perf_counter()
    prepare(clip)
    return round(time.perf_counter() - t, 3)


def api_row(engine, clip: Path, clients: int) -> dict:
    """`clients` official openai clients at once, each posting the 30 s clip to the API in front of `engine`
    (uvicorn in this process, as `hushscribe serve` runs it; the clients in a process of their own,
    bench/api_clients.py): aggregate × realtime from the first request sent to the last answer, after one warm
    round (graphs for the batch sizes this brings), and the batches the server made of them."""
    import threading
    import urllib.request

    import uvicorn

    from hushscribe.server import create_app
    from tests.servers import free_port

    batches = []  # (start, end, segments) of every engine call, wall clock
    recognize = engine.recognize

    def timed_recognize(segments, options):
        start = time.time()
        try:
            return recognize(segments, options)
        finally:
            batches.append((start, time.time(), len(segments)))

    engine.recognize = timed_recognize
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)

    def health() -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health") as answer:
            return json.loads(answer.read())

    def round_of_clients() -> dict:
        result = subprocess.run([sys.executable, str(ROOT / "bench" / "api_clients.py"),
                                 f"http://127.0.0.1:{port}/v1", str(clip), "--clients", str(clients)],
                                capture_output=True, text=True, check=True)
        return json.loads(result.stdout.splitlines()[-1])

    try:
        round_of_clients()
        before = health()
        batches.clear()
        timed = round_of_clients()
        after = health()
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        engine.recognize = recognize
    return {"clients": clients, "clip_s": 30.0, "seconds": timed["seconds"],
            "x_realtime": round(clients * 30.0 / timed["seconds"], 1), "answered": timed["answered"],
            "batches": after["batches"] - before["batches"], "segments": after["segments"] - before["segments"],
            "most_requests_in_a_batch": after["most_calls_in_a_batch"],
            **engine_calls([(start - timed["start"], end - timed["start"], rows) for start, end, rows in batches
                            if end > timed["start"]])}


def engine_calls(calls: list[tuple[float, float, int]]) -> dict:
    """The API row's engine calls (from, to: seconds after the first request was sent; segments): the seconds
    the engine was busy, and each call."""
    return {"engine_busy_s": round(sum(end - start for start, end, _ in calls), 3),
            "timeline": [(round(start, 3), round(end, 3), rows) for start, end, rows in calls]}


class InstantEngine:
    """A recogniser that answers every batch after 50 ms with the same text: what the API server costs apart
    from recognition (upload, decode, VAD, batching, formats), with no model and no GPU."""

    name, model_name, batch_size, device, word_timing, side_by_side = "qwen", "instant", 128, "cpu", None, True

    def supports_language(self, language: str) -> bool:
        return True

    def language_probabilities(self, segments):
        return None

    def recognize(self, segments, options):
        from hushscribe.engines.base import Recognition

        time.sleep(0.05)
        return [Recognition("ask not what your country can do for you", options.language) for _ in segments]

    def align(self, segments, texts):
        return [None] * len(segments)


def api_only() -> dict:
    """The API row alone: the 1.7B engine built, fused and forced as hushscribe_rows has it."""
    from hushscribe.engines.qwen import QwenEngine
    from tests.qwen_checkpoint import build_checkpoint

    logging.getLogger("hushscribe").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        build_checkpoint(work / "1.7b", "1.7b")
        engine = QwenEngine(work / "1.7b", device="cuda")
        engine.fuse()
        force_tokens(engine)
        clip = work / "clip30.flac"
        write_flac(clip, speech(30))
        return api_row(engine, clip, API_CLIENTS)


def write_flac(path: Path, audio: np.ndarray) -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("flac", rate=SAMPLE_RATE, layout="mono")
        pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
        for start in range(0, len(pcm), SAMPLE_RATE * 10):
            frame = av.AudioFrame.from_ndarray(pcm[None, start:start + SAMPLE_RATE * 10], format="s16", layout="mono")
            frame.sample_rate = SAMPLE_RATE
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def gpu_section(args) -> tuple[dict, Path]:
    import torch
    import transformers

    from tests.qwen_checkpoint import build_checkpoint

    logging.getLogger("hushscribe").setLevel(logging.ERROR)  # every forced segment "hits the token limit"
    report = {"date": str(date.today()), "gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
              "transformers": transformers.__version__, "size": "1.7b", "dtype": "bfloat16",
              "workload": f"1 h = {SEGMENTS} × 30 s segments of speech; every row decodes exactly "
                          f"{TOKENS_PER_SECOND} new tokens per second of audio (random true-size weights)",
              "rows": {}}
    name = report["gpu"].replace("NVIDIA ", "").split()[0].lower()
    path = args.out / f"gpu-{report['date']}-{name}.json"

    def save() -> None:  # after every row, so that a run stopped midway keeps what it measured
        args.out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        audio = work / "speech.npy"
        np.save(audio, speech(600))
        folder = work / "1.7b"
        build_checkpoint(folder, "1.7b")
        if not args.skip_fresh:
            fresh = fresh_process_rows(folder, work, args.official_wheels, args.skip_official)
            report.update({f"fresh_process_{key}": value for key, value in fresh.items() if key != "import_s"},
                          import_s=fresh["import_s"], fresh_process_what=FRESH_WHAT)
            print(json.dumps({"fresh_process": fresh}), flush=True)
            save()
        if args.fresh_only:
            report["workload"] = "fresh-process rows only (--fresh-only)"
            save()
            return report, path
        if not args.skip_official:
            try:
                report["rows"]["official"] = official_rows("1.7b", args.official_wheels, audio, work)
            except (subprocess.CalledProcessError, OSError) as exc:
                report["rows"]["official"] = {"error": str(exc)}
            print(json.dumps({"official": report["rows"]["official"]}), flush=True)
            save()
        for size in ("1.7b", "0.6b"):
            folder = work / size
            if not folder.is_dir():
                build_checkpoint(folder, size)
            if size == "1.7b":
                report["rows"]["generate_eager_batch1"] = generate_row(folder)
                print(json.dumps({"generate": report["rows"]["generate_eager_batch1"]}), flush=True)
            rows = hushscribe_rows(folder, work, size)
            for name, row in rows.items():
                report["rows"][f"hushscribe_{name}" if size == "1.7b" else f"hushscribe_0.6b_{name}"] = row
                print(json.dumps({name: row}), flush=True)
            save()
    headline(report)
    save()
    return report, path


def headline(report: dict) -> None:
    """Issue 20's figures as top-level keys, all from this run."""
    rows = report["rows"]
    ours, b1, e2e = rows["hushscribe_default"], rows["hushscribe_batch1"], rows["hushscribe_end_to_end_1h"]
    official = rows.get("official", {}).get("segments_30s")
    raised = rows.get("official", {}).get("segments_30s_raised_batch")
    report.update(
        x_realtime_1h=ours["x_realtime"], e2e_1h_s=e2e["seconds"], latency_30s_s=ours["latency_30s_s"],
        peak_mem_gb_b1=b1["peak_gb"], compile_s=ours["compile_s"],
        speedup_vs_official=round(ours["x_realtime"] / official["x_realtime"], 1) if official else None,
        speedup_vs_official_b128=round(ours["x_realtime"] / raised["x_realtime"], 1) if raised else None,
        api_64_x_realtime=rows.get("hushscribe_api", {}).get("x_realtime"),
    )


def gpu_table(report: dict) -> str:
    rows = report["rows"]
    lines = [f"GPU: {report['gpu']}, Qwen3-ASR-1.7B bf16, {report['workload']}", "",
             "| row | × realtime (1 h) | 30 s clip latency | peak memory | warm-up |", "|---|---|---|---|---|"]

    def line(name, xrt, latency, peak, warm):
        cells = [(f"{xrt:.0f}×" if xrt >= 10 else f"{xrt:.1f}×") if xrt else "–", f"{latency:.2f} s" if latency else "–",
                 f"{peak:.1f} GB" if peak else "–", f"{warm:.0f} s" if warm is not None else "–"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")

    official = rows.get("official", {})
    if "segments_30s" in official:
        seg, lat, one = official["segments_30s"], official["latency_30s"], official["defaults_one_file"]
        line(f"official qwen-asr, defaults (one {one['audio_s']:.0f} s file → one piece, batch 1)",
             one["x_realtime"], lat["seconds"], one["peak_gb"], official["load_s"])
        line(f"official qwen-asr, 30 s segments, batch {official['max_inference_batch_size']}",
             seg["x_realtime"], lat["seconds"], seg["peak_gb"], official["load_s"])
    gen = rows["generate_eager_batch1"]
    line("transformers generate(), eager, batch 1", gen["x_realtime"], gen["latency_30s_s"], gen["peak_gb"],
         gen["warm_up_s"])
    ours = rows["hushscribe_default"]
    line(f"**hushscribe, default (batch {ours['batch_size']})**", ours["x_realtime"], ours["latency_30s_s"],
         ours["peak_gb"], ours["warm_up_s"])
    one = rows["hushscribe_batch1"]
    line("hushscribe, batch 1", one["x_realtime"], one["latency_30s_s"], one["peak_gb"], one["warm_up_s"])
    small = rows["hushscribe_0.6b_default"]
    line(f"hushscribe, Qwen3-ASR-0.6B, default (batch {small['batch_size']})", small["x_realtime"],
         small["latency_30s_s"], small["peak_gb"], small["warm_up_s"])
    e2e = rows["hushscribe_end_to_end_1h"]
    lines += ["", f"End to end, 1 h FLAC on disk → txt/srt/json: {e2e['seconds']:.1f} s ({e2e['x_realtime']:.0f}× "
                  f"realtime; decode {e2e['decode_s']:.1f} s, VAD {e2e['vad_s']:.1f} s, {e2e['segments']} segments "
                  f"of {e2e['mean_segment_s']:.0f} s on average)."]
    if report.get("speedup_vs_official"):
        lines.append(f"Speed-up over the official package on 30 s segments: {report['speedup_vs_official']}× at "
                     f"its defaults, {report['speedup_vs_official_b128']}× with its batch limit raised to 128.")
    api = rows.get("hushscribe_api", {})
    if "error" in api:
        lines.append(f"API row not measured: {api['error']}")
    elif api:
        lines.append(f"API, {api['clients']} clients each posting a 30 s clip at once: {api['seconds']:.1f} s, "
                     f"{api['x_realtime']:.0f}× realtime in aggregate.")
    return "\n".join(lines)


def fresh_table(report: dict) -> str:
    cold, warm = report["fresh_process_cold_s"], report["fresh_process_warm_s"]
    official = report.get("fresh_process_official_s")
    lines = [f"Fresh process → transcript of a {report['fresh_process_clip_s']:.0f} s clip on disk "
             f"({report['fresh_process_new_tokens']} new tokens each side), {report['gpu']}:", "",
             "| run | seconds | minus the bare import |", "|---|---|---|"]
    for name, seconds in (("hushscribe, compile cache empty", cold), ("hushscribe, compile cache warm", warm),
                          ("official qwen-asr", official)):
        if seconds is not None:
            lines.append(f"| {name} | {seconds:.1f} | {seconds - report['import_s']:.1f} |")
    lines.append(f"| bare import of torch + transformers + hushscribe | {report['import_s']:.1f} | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-gpu", action="store_true")
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument("--skip-official", action="store_true")
    parser.add_argument("--fresh-only", action="store_true", help="only the fresh-process rows of the GPU section")
    parser.add_argument("--skip-fresh", action="store_true",
                        help="the GPU section without its fresh-process rows (about 2 minutes on an H200)")
    parser.add_argument("--api-only", action="store_true", help="only the API row of the GPU section")
    parser.add_argument("--api-overhead", action="store_true",
                        help="the API row in front of a recogniser that answers at once: the server's own cost")
    parser.add_argument("--official-wheels", type=Path, help="a folder of the wheels in bench/official_wheels.txt")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args, rest = parser.parse_known_args()
    if args.api_overhead:
        with tempfile.TemporaryDirectory() as tmp:
            clip = Path(tmp) / "clip30.flac"
            write_flac(clip, speech(30))
            print(json.dumps({"api_overhead": api_row(InstantEngine(), clip, API_CLIENTS)}))
        return
    if not args.skip_gpu:
        import torch

        if torch.cuda.is_available() and args.api_only:
            print(json.dumps({"api": api_only()}))
        elif torch.cuda.is_available():
            report, path = gpu_section(args)
            if not args.skip_fresh:
                print(fresh_table(report))
            if not args.fresh_only:
                print(gpu_table(report))
            print(f"saved {path}")
        else:
            print("no CUDA GPU: GPU section skipped")
    if not args.skip_cpu:
        sys.argv = [sys.argv[0], *rest]
        sys.path.insert(0, str(ROOT / "bench"))
        import cpu

        cpu.main()


if __name__ == "__main__":
    main()
