"""Archive throughput: `hushscribe batch` with Ray on 1 and 2 GPUs (issue 9).

    python bench/batch.py                # needs 2 CUDA GPUs and `pip install 'hushscribe[batch]'`
    python bench/batch.py --hours 4      # a smaller archive

Builds the true-size Qwen3-ASR 1.7B with random weights (as bench/bench.py does: every segment
decodes exactly 5 new tokens per second of audio), writes an archive of real speech (the bundled
samples, repeated) as FLAC and WAV files from 2 to 90 minutes long, and runs the real batch driver
over it with a local Ray cluster: CPU tasks decode and find speech, one actor per GPU recognises.
Rows: 1 GPU and 2 GPUs with the default files at once per GPU, then 1 GPU taking one file at a time. Start-up
(loading and compiling, in parallel on every GPU) is reported apart from the transcription time.
Results go to bench/results/batch-DATE-GPU.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # not bench/: its bench.py would shadow the bench folder
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])

from bench.bench import force_tokens, speech, write_flac  # noqa: E402
from hushscribe import batch  # noqa: E402
from hushscribe.audio import SAMPLE_RATE  # noqa: E402
from hushscribe.options import OutputOptions, TranscribeOptions  # noqa: E402

# minutes per file: meetings, interviews, lectures and short notes; about 10 h in all
MINUTES = [90, 60, 60, 45, 45, 30, 30, 30, 30, 20, 20, 20, 20, 10, 10, 10, 10, 10, 10, 5, 5, 5, 5, 5, 5,
           2, 2, 2, 2, 2, 2]


class BenchWorker(batch.LocalRunner):
    """The batch worker, with the benchmark's fixed token budget, compiled before the clock starts."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        logging.getLogger("hushscribe").setLevel(logging.ERROR)  # every forced segment "hits the token limit"
        from hushscribe.engines.base import RecognitionOptions

        engine = getattr(self.transcriber.engine, "engine", self.transcriber.engine)  # under the batching queue
        force_tokens(engine)
        engine.recognize([speech(30)] * engine.batch_size, RecognitionOptions(language="en"))


def write_file(args: tuple[Path, float]) -> float:
    path, minutes = args
    audio = speech(minutes * 60)
    if path.suffix == ".flac":
        write_flac(path, audio)
    else:
        import wave

        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(SAMPLE_RATE)
            w.writeframes((audio.clip(-1, 1) * 32767).astype("<i2").tobytes())
    return minutes * 60


def build_archive(folder: Path, hours: float) -> float:
    scale = hours * 60 / sum(MINUTES)
    jobs = [(folder / f"{'meetings' if i % 3 else 'notes'}" / f"rec{i:03d}.{'flac' if i % 2 else 'wav'}",
             round(m * scale, 2)) for i, m in enumerate(MINUTES)]
    for path, _ in jobs:
        path.parent.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(min(16, os.cpu_count() or 1)) as pool:
        return sum(pool.map(write_file, jobs))


def run(archive: Path, out: Path, model: Path, gpus: int, files_per_worker: int) -> dict:
    import ray

    ray.init(num_gpus=gpus, num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    batch.FILES_PER_GPU_WORKER = files_per_worker
    try:
        summary = batch.run_batch(archive, out, output=OutputOptions(formats=("txt", "json")),
                                  options=TranscribeOptions(language="en"),
                                  engine="qwen", model=str(model), device="cuda", ray_address="local",
                                  gpus_per_worker=1, quiet=True, worker=BenchWorker)
    finally:
        ray.shutdown()
    assert not summary.failed, summary.failed
    return {"gpus": gpus, "files_per_worker": files_per_worker, "files": len(summary.done),
            "audio_h": round(summary.audio_s / 3600, 2), "startup_s": round(summary.startup_s, 1),
            "seconds": round(summary.seconds, 1), "x_realtime": round(summary.audio_s / summary.seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--rows", default=f"1x{batch.FILES_PER_GPU_WORKER},2x{batch.FILES_PER_GPU_WORKER},1x1",
                        help="GPUs x files per GPU worker, comma-separated (default: %(default)s)")
    args = parser.parse_args()
    files_per_worker = batch.FILES_PER_GPU_WORKER  # the default, which run() changes per row

    import torch
    import transformers

    from tests.qwen_checkpoint import build_checkpoint

    report = {"date": str(date.today()), "gpu": torch.cuda.get_device_name(), "gpus_present": torch.cuda.device_count(),
              "cpus": os.cpu_count(), "torch": torch.__version__, "transformers": transformers.__version__,
              "model": "Qwen3-ASR 1.7B, random weights, bf16; 5 new tokens per second of audio", "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t = time.perf_counter()
        model = build_checkpoint(work / "model", "1.7b")
        audio_s = build_archive(work / "archive", args.hours)
        report["archive"] = {"files": len(MINUTES), "audio_h": round(audio_s / 3600, 2),
                             "formats": "FLAC and WAV, 2-90 min", "built_s": round(time.perf_counter() - t, 1)}
        print(json.dumps(report["archive"]), flush=True)
        for gpus, files in (map(int, row.split("x")) for row in args.rows.split(",")):
            if gpus > torch.cuda.device_count():
                continue
            row = run(work / "archive", work / f"out-{gpus}-{files}", model, gpus, files)
            report["rows"].append(row)
            print(json.dumps(row), flush=True)
            save(report, args.out)
    rows = {(r["gpus"], r["files_per_worker"]): r for r in report["rows"]}
    if (1, files_per_worker) in rows and (2, files_per_worker) in rows:
        report["scaling_2_gpus"] = round(rows[2, files_per_worker]["x_realtime"]
                                         / rows[1, files_per_worker]["x_realtime"], 2)
    print(f"\n{'GPUs':>4} {'files/GPU':>9} {'audio':>7} {'start-up':>9} {'time':>7} {'× realtime':>11}")
    for r in report["rows"]:
        print(f"{r['gpus']:>4} {r['files_per_worker']:>9} {r['audio_h']:>6.2f}h {r['startup_s']:>8.1f}s "
              f"{r['seconds']:>6.1f}s {r['x_realtime']:>10.1f}×")
    if "scaling_2_gpus" in report:
        print(f"2 GPUs / 1 GPU: {report['scaling_2_gpus']}×")
    print(f"saved {save(report, args.out)}")


def save(report: dict, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    name = report["gpu"].replace("NVIDIA ", "").split()[0].lower()
    path = folder / f"batch-{report['date']}-{name}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


if __name__ == "__main__":
    main()
