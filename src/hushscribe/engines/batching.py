"""One queue in front of one engine, shared by many threads (API requests, or the files a batch
worker holds at once): calls that arrive together are recognised together, so a GPU sees full
batches even when each caller brings only a few segments."""

import functools
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from hushscribe.engines.base import Engine, Recognition, RecognitionOptions
from hushscribe.transcript import Word

BATCH_WAIT_S = 0.005  # how long a lone call waits for company


LANGUAGES, ALIGN = "languages", "align"  # the calls other than recognize()


@dataclass
class _Job:
    segments: list[np.ndarray]
    options: RecognitionOptions | str  # recognize() with these options, or LANGUAGES or ALIGN
    texts: list[tuple[str, str | None]] = field(default_factory=list)  # ALIGN: each segment's text and language
    future: Future = field(default_factory=Future)


class BatchingEngine:
    """The Engine protocol in front of one real engine, shared by every request thread. Calls wait
    in one queue; a single worker thread takes what is waiting (a lone call waits BATCH_WAIT_S for
    company), merges the segments of calls with the same options into one recognize() and hands
    each caller its own results."""

    def __init__(self, engine: Engine, wait_s: float = BATCH_WAIT_S) -> None:
        self.engine, self.wait_s = engine, wait_s
        self.name, self.model_name, self.batch_size = engine.name, engine.model_name, engine.batch_size
        self.device = getattr(engine, "device", "cpu")
        self.word_timing = getattr(engine, "word_timing", None)
        self.side_by_side = getattr(engine, "side_by_side", False)
        self._queue: queue.Queue[_Job] = queue.Queue()
        self.stats = {"batches": 0, "segments": 0, "most_calls_in_a_batch": 0}
        threading.Thread(target=self._work, name="hushscribe-batcher", daemon=True).start()

    def supports_language(self, language: str) -> bool:
        return self.engine.supports_language(language)

    def language_probabilities(self, segments: list[np.ndarray]) -> list[dict[str, float]] | None:
        return self._submit(_Job(list(segments), LANGUAGES))

    def recognize(self, segments: list[np.ndarray], options: RecognitionOptions) -> list[Recognition]:
        return self._submit(_Job(list(segments), options))

    def align(self, segments: list[np.ndarray], texts: list[tuple[str, str | None]]) -> list[list[Word] | None]:
        return self._submit(_Job(list(segments), ALIGN, list(texts)))

    def _submit(self, job: _Job):
        self._queue.put(job)
        return job.future.result()

    def _work(self) -> None:
        held = None  # a call that would have overfilled the last batch: it opens the next
        while True:
            jobs = [held or self._queue.get()]
            held, rows = None, len(jobs[0].segments)
            deadline = time.monotonic() + self.wait_s
            while rows < self.batch_size:
                try:
                    job = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if rows + len(job.segments) > self.batch_size:  # else its last segments would run as a batch alone
                    held = job
                    break
                jobs.append(job)
                rows += len(job.segments)
            groups: dict[RecognitionOptions | str, list[_Job]] = {}
            for job in jobs:
                groups.setdefault(job.options, []).append(job)
            for options, group in groups.items():
                self._run(group, functools.partial(self._merged_call, group, options))

    def _merged_call(self, group: list[_Job], options: RecognitionOptions | str) -> list:
        """One engine call for the segments of every job in `group`; each job's share of the results."""
        segments = [s for job in group for s in job.segments]
        if options == LANGUAGES:
            results = self.engine.language_probabilities(segments)
            if results is None:
                return [None] * len(group)
        elif options == ALIGN:
            results = self.engine.align(segments, [text for job in group for text in job.texts])
        else:
            results = self.engine.recognize(segments, options)
            self.stats["batches"] += 1
            self.stats["segments"] += len(segments)
            self.stats["most_calls_in_a_batch"] = max(self.stats["most_calls_in_a_batch"], len(group))
        out, start = [], 0
        for job in group:
            out.append(results[start:start + len(job.segments)])
            start += len(job.segments)
        return out

    @staticmethod
    def _run(jobs: list[_Job], work) -> None:
        try:
            for job, result in zip(jobs, work(), strict=True):
                job.future.set_result(result)
        except BaseException as exc:  # the callers re-raise it; the worker goes on
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
