"""Archives: `hushscribe batch IN -o OUT`, resumable, in-process or across a Ray cluster.

The driver walks the input tree, skips what the manifest (OUT/_manifest.jsonl) says is done for the
same file contents, and hands files out longest first. Without Ray one Transcriber in this process
does them (the `transcribe` code path, model loaded once). With Ray, one actor per GPU (or per N
cores) holds a model and transcribes whole files; a free actor takes the next file, so actors
finish together. Only the driver writes: outputs atomically, then one manifest line per file. An
actor that dies costs only its file, which goes to another (a new actor replaces it); a file that
fails is tried once more, then reported with its error.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from hushscribe import audio as audio_mod
from hushscribe.errors import HushError

MANIFEST = "_manifest.jsonl"


@dataclass
class Item:
    """One input file of the archive."""

    path: Path
    relative: str  # its path under the input folder, the manifest's key
    size: int
    sha256: str
    seconds: float  # as its container states it (0 when unknown): for the order of work
    attempts: int = 0  # results received (a failure is tried once more)
    lost: int = 0  # workers that died while holding it


@dataclass
class Summary:
    done: list[Item] = field(default_factory=list)
    skipped: list[Item] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # relative path → error
    audio_s: float = 0.0
    seconds: float = 0.0


def walk(input_dir: Path) -> list[Item]:
    paths = sorted(p for p in input_dir.rglob("*")
                   if p.is_file() and p.suffix.lower() in audio_mod.AUDIO_EXTENSIONS)
    return [Item(p, p.relative_to(input_dir).as_posix(), p.stat().st_size, file_hash(p), _seconds(p)) for p in paths]


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _seconds(path: Path) -> float:
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            return container.duration / av.time_base if container.duration else 0.0
    except (av.error.FFmpegError, UnicodeDecodeError, OSError):
        return 0.0  # the worker will say what is wrong with it


class Manifest:
    """Append-only JSON lines; the last line for a file is its state."""

    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / MANIFEST
        self.latest: dict[str, dict] = {}
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:  # a line cut short by a crash
                    continue
                self.latest[record["file"]] = record

    def settled(self, item: Item, outputs: list[Path]) -> str | None:
        """'done' (outputs all there) or 'failed' (twice, already reported) for these very contents;
        None: to do."""
        record = self.latest.get(item.relative)
        if record is None or record["sha256"] != item.sha256:
            return None
        if record["status"] == "done":
            return "done" if all(p.exists() for p in outputs) else None
        return "failed"

    def add(self, record: dict) -> None:
        self.latest[record["file"]] = record
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())


def outputs_of(item: Item, out_dir: Path, formats: list[str]) -> list[Path]:
    stem = out_dir / Path(item.relative).with_suffix("")
    return [stem.with_name(f"{stem.name}.{fmt}") for fmt in formats]


# --- runners: where the transcription happens ---------------------------------------------------------------

Result = tuple[Item, object]  # (item, Transcript) or (item, "error message")


class LocalRunner:
    """The transcribe command's code path, in this process; also each Ray worker (an actor)."""

    def __init__(self, engine: str, model: str | None, device: str, options) -> None:
        from hushscribe.transcriber import Transcriber

        self.transcriber = Transcriber(engine, model=model, device=device)
        self.options = self.transcriber.checked(options)

    def transcribe(self, path: Path | str):
        """The Transcript of one file, or its error message."""
        try:
            return self.transcriber.transcribe(path, self.options)
        except HushError as exc:
            return str(exc)

    def run(self, items: list[Item]) -> Iterator[Result]:
        for item in items:
            yield item, self.transcribe(item.path)

    def close(self) -> None:
        pass


class RayRunner:
    """One actor per GPU (or per `cpus_per_worker` cores), each holding a model; the driver keeps
    every actor busy with one file and replaces an actor that dies."""

    def __init__(self, address: str, engine: str, model: str | None, device: str, options, *,
                 gpus_per_worker: float, cpus_per_worker: float,
                 on_worker_lost: Callable[[str], None] | None = None) -> None:
        import ray

        self.ray = ray
        if not ray.is_initialized():
            kwargs = {"include_dashboard": False, "log_to_driver": False}
            try:
                ray.init(**kwargs) if address == "local" else ray.init(address=address, **kwargs)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise HushError(f"cannot reach the Ray cluster at '{address}' ({str(exc).splitlines()[0][:200]}); "
                                "start one with `ray start --head`, or use --ray local") from None
        resources = ray.cluster_resources()
        if gpus_per_worker:
            count = int(resources.get("GPU", 0) // gpus_per_worker)
            if count == 0:
                raise HushError("the Ray cluster has no GPU; use --gpus-per-worker 0 for CPU workers")
        else:
            count = max(1, int(resources.get("CPU", 1) // cpus_per_worker))
        self.worker_class = ray.remote(num_gpus=gpus_per_worker, num_cpus=cpus_per_worker)(LocalRunner)
        self.args = (engine, model, device, options)
        self.workers = {f"hushscribe-worker-{i}": None for i in range(count)}
        self.started = 0
        self.on_worker_lost = on_worker_lost or (lambda message: None)
        for name in self.workers:
            self.workers[name] = self._start(name)

    def _start(self, name: str):
        self.started += 1
        return self.worker_class.options(name=f"{name}-{self.started}", namespace="hushscribe").remote(*self.args)

    def run(self, items: list[Item]) -> Iterator[Result]:
        ray = self.ray
        queue = list(items)
        running: dict = {}  # future → (worker name, item)

        def feed(name: str) -> None:
            if queue:
                item = queue.pop(0)
                running[self.workers[name].transcribe.remote(str(item.path))] = (name, item)

        for name in self.workers:
            feed(name)
        while running:
            ready, _ = ray.wait(list(running), num_returns=1)
            name, item = running.pop(ready[0])
            try:
                result = ray.get(ready[0])
            except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as exc:
                # the worker went away mid-file: a new one starts, and the file goes to the next free one
                self.workers[name] = self._start(name)
                item.lost += 1
                result = f"{item.relative}: the worker died twice on this file ({type(exc).__name__})"
                if item.lost < 2:
                    self.on_worker_lost(f"worker {name} lost ({type(exc).__name__}); {item.relative} goes to "
                                        "another")
                    queue.insert(0, item)
                    feed(name)
                    continue
            feed(name)
            yield item, result

    def close(self) -> None:
        for worker in self.workers.values():
            self.ray.kill(worker)


# --- the driver -----------------------------------------------------------------------------------------------


def run_batch(input_dir: Path, out_dir: Path, *, formats: list[str], options, engine: str = "auto",
              model: str | None = None, device: str = "auto", ray_address: str | None = None,
              gpus_per_worker: float = 0, cpus_per_worker: float = 2, timestamps: bool = True,
              quiet: bool = False) -> Summary:
    from tqdm import tqdm

    from hushscribe import formats as formats_mod

    if not input_dir.is_dir():
        raise HushError(f"{input_dir}: not a folder; give the folder that holds the recordings")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HushError(f"cannot use {out_dir} as the output folder ({exc.strerror or exc}); choose another "
                        "with -o") from None
    manifest = Manifest(out_dir)
    summary = Summary()
    items = walk(input_dir)
    todo = []
    for item in items:
        state = manifest.settled(item, outputs_of(item, out_dir, formats))
        if state == "done":
            summary.skipped.append(item)
        elif state == "failed":
            summary.failed[item.relative] = manifest.latest[item.relative]["error"]
        else:
            todo.append(item)
    todo.sort(key=lambda i: (-i.seconds, -i.size))  # longest first: the workers finish together
    if not todo:
        return summary
    started = time.perf_counter()
    bar = tqdm(total=len(todo), unit="file", file=sys.stderr, disable=quiet, dynamic_ncols=True)
    lost = (lambda message: bar.write(f"hushscribe: {message}"))
    if ray_address:
        runner = RayRunner(ray_address, engine, model, device, options, gpus_per_worker=gpus_per_worker,
                           cpus_per_worker=cpus_per_worker, on_worker_lost=lost)
    else:
        runner = LocalRunner(engine, model, device, options)
    try:
        while todo:
            retry = []
            for item, result in runner.run(todo):
                item.attempts += 1
                record = {"file": item.relative, "size": item.size, "sha256": item.sha256,
                          "engine": engine, "model": model, "attempt": item.attempts}
                if isinstance(result, str):
                    if item.attempts < 2:
                        retry.append(item)
                        continue
                    summary.failed[item.relative] = result
                    manifest.add({**record, "status": "failed", "error": result})
                else:
                    try:
                        for fmt, path in zip(formats, outputs_of(item, out_dir, formats)):
                            path.parent.mkdir(parents=True, exist_ok=True)
                            formats_mod.write(result, fmt, path, timestamps=timestamps, overwrite=True)
                    except HushError as exc:
                        summary.failed[item.relative] = str(exc)
                        manifest.add({**record, "status": "failed", "error": str(exc)})
                    else:
                        summary.done.append(item)
                        summary.audio_s += result.duration
                        manifest.add({**record, "status": "done", "duration": round(result.duration, 3),
                                      "processing_s": round(result.processing_s, 3),
                                      "outputs": [p.relative_to(out_dir).as_posix()
                                                  for p in outputs_of(item, out_dir, formats)]})
                bar.update(1)
                elapsed = time.perf_counter() - started
                bar.set_postfix_str(f"{summary.audio_s / 3600:.2f} h, {summary.audio_s / max(elapsed, 1e-6):.1f}× "
                                    "realtime", refresh=False)
            todo = retry
    finally:
        bar.close()
        runner.close()
        summary.seconds = time.perf_counter() - started
    return summary


def print_summary(summary: Summary) -> None:
    speed = f"{summary.audio_s / summary.seconds:.1f}×" if summary.seconds else "–"
    rows = [("transcribed", str(len(summary.done))), ("already done", str(len(summary.skipped))),
            ("failed", str(len(summary.failed))), ("audio", f"{summary.audio_s / 3600:.2f} h"),
            ("time", f"{summary.seconds:.1f} s"), ("speed", f"{speed} realtime")]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key:<{width}}  {value}", file=sys.stderr)
    for relative, error in summary.failed.items():
        print(f"hushscribe: error: {error}", file=sys.stderr)
