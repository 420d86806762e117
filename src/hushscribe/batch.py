"""Archives: `hushscribe batch IN -o OUT`, resumable, in-process or across a Ray cluster.

The driver walks the input tree, skips what the manifest (OUT/_manifest.jsonl) says is done for the
same file contents, and hands files out longest first. Without Ray one Transcriber in this process
does them (the `transcribe` code path, model loaded once). With Ray, CPU tasks decode files and
find their speech a few files ahead, and one actor per GPU (or per N cores) holds a model and
recognises whole prepared files; a free actor takes the next one, so actors finish together. Only
the driver writes: outputs atomically, then one manifest line per file. An actor that dies is
replaced and the files it held go to others (each alone, to find the one to blame: a file that kills
a worker twice on its own is reported); a file that fails is tried once more, then reported with
its error.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from hushscribe import audio as audio_mod
from hushscribe.errors import HushError
from hushscribe.formats import output_path
from hushscribe.options import OutputOptions
from hushscribe.schedule import START_TIMEOUT_S, Decisions, Entry, Scheduler, Task

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
    lost: int = 0  # workers that died while holding it alone


@dataclass
class Summary:
    done: list[Item] = field(default_factory=list)
    skipped: list[Item] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # relative path → error
    audio_s: float = 0.0
    startup_s: float = 0.0  # loading the model(s) (files are decoded meanwhile)
    seconds: float = 0.0  # transcribing, once loaded


def walk(input_dir: Path) -> list[Item]:
    paths = audio_mod.find_recordings(input_dir)
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
        with audio_mod.open_container(str(path)) as container:
            return container.duration / av.time_base if container.duration else 0.0
    except (av.error.FFmpegError, OSError):
        return 0.0  # the worker will say what is wrong with it


class Manifest:
    """Append-only JSON lines; the last line for a file is its state."""

    def __init__(self, out_dir: Path, options: str) -> None:
        self.path = out_dir / MANIFEST
        self.options = options  # what shapes the outputs (_shaping): a file done with others is done again
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
        # a record written before the manifest kept the options counts as made with these
        if record is None or record["sha256"] != item.sha256 or record.get("options", self.options) != self.options:
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


def outputs_of(item: Item, out_dir: Path, formats: tuple[str, ...]) -> list[Path]:
    relative = Path(item.relative)
    return [output_path(out_dir / relative.parent, relative.stem, fmt) for fmt in formats]


def _shaping(engine: str, model: str | None, options, output) -> str:
    """A short fingerprint of what shapes a file's outputs: the engine and model asked for, every transcription
    option and how the outputs are rendered (which of them are written is not part of it)."""
    rendering = dataclasses.replace(output, formats=(), overwrite=False)
    shape = {"engine": engine, "model": model, "options": dataclasses.asdict(options),
             "output": dataclasses.asdict(rendering)}
    return hashlib.sha256(json.dumps(shape, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --- runners: where the transcription happens ---------------------------------------------------------------

Result = tuple[Item, object]  # (item, Transcript) or (item, "error message")


class LocalRunner:
    """The transcribe command's code path, in this process; also each Ray worker (an actor). A worker
    given several files at once (`concurrent` > 1, one thread each) recognises their segments in
    shared batches."""

    def __init__(self, engine: str, model: str | None, device: str, options, concurrent: int = 1,
                 compile: bool = True, aligner: str | None = None) -> None:
        from hushscribe.engines.batching import BatchingEngine
        from hushscribe.transcriber import Transcriber

        self.transcriber = Transcriber(engine, model=model, device=device, compile=compile, aligner=aligner)
        if concurrent > 1:
            self.transcriber = Transcriber(BatchingEngine(self.transcriber.engine))
        self.options = self.transcriber.checked(options)
        self.ready_at = time.perf_counter()  # the model is loaded

    def ready(self) -> bool:
        """For Ray: answers once the model is loaded."""
        return True

    def transcribe(self, source):
        """The Transcript of one file (a path, or the file as prepare() made it), or its error message."""
        try:
            return self.transcriber.transcribe(source, self.options)
        except HushError as exc:
            return str(exc)

    def run(self, items: list[Item]) -> Iterator[Result]:
        for item in items:
            yield item, self.transcribe(item.path)

    @property
    def workers_left(self) -> bool:
        return True

    def close(self) -> None:
        pass


def prepare_file(path: str, options) -> tuple[str | None, object]:
    """A Ray CPU task: (None, the file decoded and cut into speech spans) or (its error, None)."""
    from hushscribe.transcriber import prepare

    try:
        return None, prepare(path, options)
    except HushError as exc:
        return str(exc), None


# A GPU worker recognises this many files at once: each brings a 10-minute window of segments at a
# time (about 20), and together they fill the GPU's batches.
FILES_PER_GPU_WORKER = 6


class RayRunner:
    """One actor per GPU (or per `cpus_per_worker` cores) holds a model; CPU tasks decode and segment
    files ahead of them (one core each, wherever the cluster has one free). What goes where and when is
    the Scheduler's to decide (schedule.py); this shell starts Ray's tasks and actors as it says and
    tells it what comes back. A worker that dies is replaced; the files it held go to other workers,
    each alone, and a file that kills a worker alone twice is reported."""

    def __init__(self, address: str, engine: str, model: str | None, device: str, options, compile: bool = True, *,
                 aligner: str | None = None, gpus_per_worker: float | None, cpus_per_worker: float,
                 on_worker_lost: Callable[[str], None] | None = None, on_ready: Callable[[], None] | None = None,
                 worker: type = LocalRunner) -> None:
        import ray

        if cpus_per_worker <= 0 or (gpus_per_worker or 0) < 0:
            raise HushError("--cpus-per-worker must be above 0 and --gpus-per-worker 0 or more")
        self.ray = ray
        if not ray.is_initialized():
            _check_reachable(address)
            kwargs = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
            try:
                ray.init(**kwargs) if address == "local" else ray.init(address=address, **kwargs)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise HushError(f"cannot reach the Ray cluster at '{address}' ({str(exc).splitlines()[0][:200]}); "
                                "start one with `ray start --head`, or use --ray local") from None
        resources = ray.cluster_resources()
        cpus = resources.get("CPU", 0)
        if gpus_per_worker is None:  # a GPU each where there are GPUs, unless the engine is the CPU one
            gpus_per_worker = 1 if resources.get("GPU", 0) >= 1 and engine != "whisper" and device != "cpu" else 0
        if gpus_per_worker:
            count, actor_cpus, slots = int(resources.get("GPU", 0) // gpus_per_worker), 1, FILES_PER_GPU_WORKER
            if count == 0:
                raise HushError("the Ray cluster has no GPU; use --gpus-per-worker 0 for CPU workers")
        else:  # one core stays free for decoding; a machine with fewer than asked has one worker with the rest
            count, actor_cpus, slots = int((cpus - 1) // cpus_per_worker), cpus_per_worker, 1
            if count == 0 and cpus >= 2:
                count, actor_cpus = 1, cpus - 1
        if count <= 0 or cpus < count * actor_cpus + 1:
            raise HushError(f"the Ray cluster has {cpus:g} CPUs: too few for a worker and a core to decode "
                            "with; lower --cpus-per-worker")
        self.worker_class = ray.remote(num_gpus=gpus_per_worker, num_cpus=actor_cpus, max_concurrency=slots)(worker)
        self.prepare = ray.remote(num_cpus=1, num_returns=2, scheduling_strategy="SPREAD")(prepare_file)
        self.args = (engine, model, device, options, slots, compile, aligner)
        self.options = options
        self.run_id = os.urandom(3).hex()  # actor names stay unique when two batches share a cluster
        self.started = 0
        self.workers = {f"hushscribe-worker-{i}": self._start(f"hushscribe-worker-{i}") for i in range(count)}
        self.schedule = Scheduler(list(self.workers), slots)
        self.starting: dict = {}  # ready ref → name of a replacement worker still loading
        self.tasks: dict = {}  # result ref → the Task it answers
        self.on_worker_lost = on_worker_lost or (lambda message: None)
        self.on_ready = on_ready or (lambda: None)
        self.ready_at: float | None = None  # once every worker has loaded its model (files are decoded meanwhile)

    def _start(self, name: str):
        self.started += 1
        return self.worker_class.options(name=f"{name}-{self.run_id}-{self.started}",
                                         namespace="hushscribe").remote(*self.args)

    def _replace(self, name: str) -> None:
        self.workers[name] = self._start(name)
        self.starting[self.workers[name].ready.remote()] = name

    def _drop(self, name: str) -> None:
        self.ray.kill(self.workers.pop(name))

    def run(self, items: list[Item]) -> Iterator[Result]:
        schedule = self.schedule
        yield from schedule.begin(items)  # with no worker left, the files fail at once
        self._carry_out(schedule.decide())  # decoding starts while the workers load their models
        if self.ready_at is None:
            self._wait_until_ready()
        self._carry_out(schedule.decide())
        while not schedule.done:
            checks = {entry.handle[0]: entry for entry in schedule.preparing.values()}  # error ref → entry
            ready, _ = self.ray.wait([*checks, *self.tasks, *self.starting], num_returns=1, timeout=schedule.wait_s)
            results = self._settle(ready[0], checks) if ready else self._give_up_starting()
            self._carry_out(schedule.decide())  # before handing results over: workers stay busy while the driver writes
            yield from results

    def _wait_until_ready(self) -> None:
        ray = self.ray
        try:
            ray.get([w.ready.remote() for w in self.workers.values()], timeout=START_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            raise HushError(f"the workers did not start within {START_TIMEOUT_S // 60} minutes; is the "
                            "cluster busy?") from None
        except ray.exceptions.RayError as exc:
            raise HushError(f"the workers could not start: {_cause(exc)}") from None
        self.ready_at = time.perf_counter()
        self.on_ready()
        for name in self.workers:
            self.schedule.ready(name)

    def _carry_out(self, decisions: Decisions) -> None:
        for entry in decisions.prepare:
            entry.handle = self.prepare.remote(str(entry.item.path), self.options)  # [error ref, data ref]
        for task in decisions.give:
            self.tasks[self.workers[task.worker.name].transcribe.remote(task.entry.handle[1])] = task

    def _settle(self, ref, checks: dict) -> list[Result]:
        """Tells the schedule what came back on `ref`: a replacement up, a file prepared, or a file's result.
        Answers the files the run is finished with."""
        if ref in self.starting:
            return self._replaced(self.starting.pop(ref), ref)
        if ref in checks:
            return self._prepared(checks[ref], ref)
        return self._finished(self.tasks.pop(ref), ref)

    def _replaced(self, name: str, ref) -> list[Result]:
        try:
            self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            self.on_worker_lost(f"worker {name} could not be replaced ({_cause(exc)})")
            self._drop(name)
            return self.schedule.not_replaced(name)
        self.schedule.ready(name)
        return []

    def _prepared(self, entry: Entry, ref) -> list[Result]:
        try:
            error = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:  # the decoding process itself died
            error = f"{entry.item.relative}: decoding failed ({_cause(exc)})"
        return self.schedule.prepared(entry, error)

    def _finished(self, task: Task, ref) -> list[Result]:
        exceptions = self.ray.exceptions
        try:
            result = self.ray.get(ref)
        except (exceptions.RayActorError, exceptions.WorkerCrashedError) as exc:
            if self.schedule.worker_died(task):  # the first of its files to tell: a new worker starts
                self._replace(task.worker.name)
                self.on_worker_lost(f"worker {task.worker.name} lost ({type(exc).__name__}); its files go to others")
            return self.schedule.file_lost(task)
        except exceptions.RayTaskError as exc:  # an unexpected error in the worker: this file fails
            result = f"{task.entry.item.relative}: {_cause(exc)}"
        self.schedule.finished(task)
        return [(task.entry.item, result)]

    def _give_up_starting(self) -> list[Result]:
        """Replacements that never came up (a lost node, no free GPU), and nothing else to wait for."""
        for name in self.starting.values():
            self._drop(name)
        self.starting.clear()
        return self.schedule.timed_out()

    @property
    def workers_left(self) -> bool:
        """Whether a worker is still there or starting: without one, what fails is the cluster's doing."""
        return bool(self.schedule.workers)

    def close(self) -> None:
        for worker in self.workers.values():
            self.ray.kill(worker)


def _check_reachable(address: str) -> None:
    """A cluster named as host:port must answer there within seconds (Ray itself retries for minutes)."""
    import socket

    host, _, port = address.rpartition(":")
    if address in ("local", "auto") or "://" in address or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise HushError(f"cannot reach the Ray cluster at '{address}' ({exc.strerror or exc}); start one with "
                        "`ray start --head` there, or use --ray local") from None


def _cause(exc: Exception) -> str:
    """The last line of a Ray error: the original exception, without Ray's traceback."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[-1].strip()[:300] if lines else type(exc).__name__


# --- the driver -----------------------------------------------------------------------------------------------


def run_batch(input_dir: Path, out_dir: Path, *, output: OutputOptions, options, engine: str = "auto",
              model: str | None = None, device: str = "auto", ray_address: str | None = None,
              gpus_per_worker: float | None = None, cpus_per_worker: float = 2,
              compile: bool = True, aligner: str | None = None, quiet: bool = False,
              worker: type = LocalRunner) -> Summary:
    """Transcribe what is left to do under `input_dir`; `worker` is the class that holds the model in
    each worker (this process or a Ray actor): LocalRunner, or one that extends it."""
    from tqdm import tqdm

    from hushscribe import formats as formats_mod

    if not input_dir.is_dir():
        raise HushError(f"{input_dir}: not a folder; give the folder that holds the recordings")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HushError(f"cannot use {out_dir} as the output folder ({exc.strerror or exc}); choose another "
                        "with -o") from None
    manifest = Manifest(out_dir, _shaping(engine, model, options, output))
    summary = Summary()
    items = walk(input_dir)
    todo = []
    for item in items:
        state = manifest.settled(item, outputs_of(item, out_dir, output.formats))
        if state == "done":
            summary.skipped.append(item)
        elif state == "failed":
            summary.failed[item.relative] = manifest.latest[item.relative]["error"]
        else:
            todo.append(item)
    todo.sort(key=lambda i: (-i.seconds, -i.size))  # longest first: the workers finish together
    if not todo:
        return summary
    bar = tqdm(total=len(todo), unit="file", file=sys.stderr, disable=quiet, dynamic_ncols=True,
               desc="loading the model")

    def lost(message: str) -> None:
        bar.write(f"hushscribe: {message}")

    started = time.perf_counter()
    try:
        if ray_address:
            runner = RayRunner(ray_address, engine, model, device, options, compile, aligner=aligner,
                               gpus_per_worker=gpus_per_worker,
                               cpus_per_worker=cpus_per_worker, on_worker_lost=lost,
                               on_ready=lambda: bar.set_description("transcribing"), worker=worker)
        else:
            runner = worker(engine, model, device, options, compile=compile, aligner=aligner)
            bar.set_description("transcribing")
    except BaseException:
        bar.close()
        raise
    try:
        while todo:
            retry = []
            for item, result in runner.run(todo):
                item.attempts += 1
                record = {"file": item.relative, "size": item.size, "sha256": item.sha256,
                          "engine": engine, "model": model, "options": manifest.options, "attempt": item.attempts}
                if isinstance(result, str) and not runner.workers_left:
                    # not the file's doing: no record, so that the next run, with workers, does it
                    summary.failed[item.relative] = f"{result}; run batch again when the cluster is back"
                elif isinstance(result, str):
                    if item.attempts < 2 and item.lost < 2:  # one that killed its worker twice is not retried
                        retry.append(item)
                        continue
                    summary.failed[item.relative] = result
                    manifest.add({**record, "status": "failed", "error": result})
                else:
                    outputs = outputs_of(item, out_dir, output.formats)
                    try:
                        for fmt, path in zip(output.formats, outputs):
                            path.parent.mkdir(parents=True, exist_ok=True)
                            formats_mod.write(result, fmt, path, output, overwrite=True)
                    except HushError as exc:
                        summary.failed[item.relative] = str(exc)
                        manifest.add({**record, "status": "failed", "error": str(exc)})
                    else:
                        summary.done.append(item)
                        summary.audio_s += result.duration
                        manifest.add({**record, "status": "done", "duration": round(result.duration, 3),
                                      "processing_s": round(result.processing_s, 3),
                                      "outputs": [p.relative_to(out_dir).as_posix() for p in outputs]})
                bar.update(1)
                elapsed = time.perf_counter() - runner.ready_at
                bar.set_postfix_str(f"{summary.audio_s / 3600:.2f} h, {summary.audio_s / max(elapsed, 1e-6):.1f}× "
                                    "realtime", refresh=False)
            todo = retry
    finally:
        bar.close()
        runner.close()
        if runner.ready_at is not None:
            summary.startup_s = runner.ready_at - started
            summary.seconds = time.perf_counter() - runner.ready_at
    return summary


def print_summary(summary: Summary) -> None:
    speed = f"{summary.audio_s / summary.seconds:.1f}×" if summary.seconds else "–"
    rows = [("transcribed", str(len(summary.done))), ("already done", str(len(summary.skipped))),
            ("failed", str(len(summary.failed))), ("audio", f"{summary.audio_s / 3600:.2f} h"),
            ("start-up", f"{summary.startup_s:.1f} s"), ("time", f"{summary.seconds:.1f} s"),
            ("speed", f"{speed} realtime")]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key:<{width}}  {value}", file=sys.stderr)
    for relative, error in summary.failed.items():
        print(f"hushscribe: error: {error}", file=sys.stderr)
