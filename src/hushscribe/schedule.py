"""The Ray runner's decisions, as plain data and without Ray: which files are decoded ahead of the
workers, which prepared file goes to which worker, what runs again alone, what fails, and when a run
is over.

The runner tells a Scheduler what happened (a worker is ready or died, a file was prepared or came
back) and carries out what decide() answers. Files go longest first (the order a run is given). A
worker holds up to `slots` files at once; a file that was beside others when its worker died runs
next on a worker of its own, so that only a file that kills a worker alone is blamed (twice: it fails).
With no worker left (none starting either), every file not finished fails at once, in this run and the next.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hushscribe.batch import Item

# Files decoded ahead of the workers (being prepared or waiting): at most this many per file a worker
# holds, and at most this much audio per worker (a prepared hour is 230 MB of samples).
PREPARED_PER_SLOT = 2
PREPARED_S_PER_WORKER = 4 * 3600
# How long workers may take to come up (loading, compiling; a busy cluster) before the run gives up.
START_TIMEOUT_S = 900

Failure = tuple["Item", str]  # a file the run is finished with, and why it failed


@dataclass(order=True)
class Entry:
    """A file of the run: its place in the order of work, and the runner's hold on it once it is sent
    to be prepared (the scheduler only passes that on)."""

    position: int
    item: Item = field(compare=False)
    handle: object = field(default=None, compare=False)


@dataclass(eq=False)
class Worker:
    """A worker as the scheduler sees it; a replacement is a new Worker under the same name."""

    name: str
    free: int = 0  # slots without a file; 0 until it is ready
    starting: bool = False  # a replacement loading its model


@dataclass(frozen=True)
class Task:
    """A file given to a worker, taking `slots` of its slots (all of them: the file runs alone)."""

    entry: Entry
    worker: Worker
    slots: int


@dataclass(frozen=True)
class Decisions:
    prepare: list[Entry]  # to send to be decoded and cut into speech spans, in this order
    give: list[Task]  # to hand to their workers


class Scheduler:
    """Workers named `names`, each holding up to `slots` files; they take files once ready()."""

    def __init__(self, names: list[str], slots: int) -> None:
        self.slots = slots
        self.workers = {name: Worker(name) for name in names}
        self.no_worker_because = "none was started"  # why, once no worker is left: what the files fail with
        self.begin([])

    def begin(self, items: list[Item]) -> list[Failure]:
        """A run of these files, longest first. The workers stay as the last run left them: with none left,
        the files fail at once."""
        self.waiting = deque(Entry(position, item) for position, item in enumerate(items))  # not yet sent
        self.preparing: dict[int, Entry] = {}  # position → entry
        self.queued: list[Entry] = []  # a heap: prepared, waiting for a worker, longest first
        self.alone: deque[Entry] = deque()  # to run with nothing beside it (a worker died holding it)
        self.running = 0  # files given to workers and not back yet
        return self._fail_if_no_worker()

    @property
    def done(self) -> bool:
        """Nothing being prepared or run, and nothing left that a loading replacement could take (asked
        after decide(), which sends a file to be prepared while any wait)."""
        starting = any(worker.starting for worker in self.workers.values())
        return not (self.preparing or self.running or (starting and (self.queued or self.alone or self.waiting)))

    @property
    def wait_s(self) -> float | None:
        """How long the runner may wait for the next event before calling timed_out(): no limit while
        files are being prepared or run, START_TIMEOUT_S while only replacements are loading."""
        return None if self.preparing or self.running else START_TIMEOUT_S

    def decide(self) -> Decisions:
        """What to do now; the runner asks after every event."""
        prepare = self._prepare_more()
        give = self._give_alone()  # first: a worker that is all free goes to a file that must run alone
        return Decisions(prepare, give + self._give_queued())

    # --- events -----------------------------------------------------------------------------------------------

    def ready(self, name: str) -> None:
        """A worker has loaded its model: all its slots are free."""
        worker = self.workers[name]
        worker.free, worker.starting = self.slots, False

    def prepared(self, entry: Entry, error: str | None) -> list[Failure]:
        """A file came back from being prepared: it waits for a worker, or it failed with `error`."""
        del self.preparing[entry.position]
        if error is not None:
            return [(entry.item, error)]
        heapq.heappush(self.queued, entry)
        return []

    def finished(self, task: Task) -> None:
        """A worker sent back a file's result (a transcript or an error): its slots are free again (on a
        worker since replaced, that no longer counts: the replacement is another Worker)."""
        self.running -= 1
        task.worker.free += task.slots

    def worker_died(self, task: Task) -> bool:
        """The worker holding `task` died. True at the first news of it: the runner starts a
        replacement under the same name, which takes files once ready()."""
        if self.workers.get(task.worker.name) is not task.worker:
            return False
        self.workers[task.worker.name] = Worker(task.worker.name, starting=True)
        return True

    def file_lost(self, task: Task) -> list[Failure]:
        """`task` went down with its worker: the file runs again alone, unless it has now killed a
        worker twice while alone on it, or no worker is left to run it."""
        self.running -= 1
        item = task.entry.item
        if task.slots == self.slots:  # it held this file alone: the file is to blame
            item.lost += 1
        if item.lost >= 2:
            return [(item, f"{item.relative}: the worker died twice while holding only this file")]
        self.alone.append(task.entry)
        return self._fail_if_no_worker()  # its worker was the last, and its replacement already failed

    def not_replaced(self, name: str) -> list[Failure]:
        """A replacement could not load and is gone; with no worker left, every file still to do fails."""
        del self.workers[name]
        self.no_worker_because = "every worker died and none could be replaced"
        return self._fail_if_no_worker()

    def timed_out(self) -> list[Failure]:
        """Nothing came within wait_s: the loading replacements are given up, and every file still to do
        fails."""
        self.workers = {name: worker for name, worker in self.workers.items() if not worker.starting}
        self.no_worker_because = f"none could be started within {START_TIMEOUT_S // 60} minutes"
        return self._fail_the_rest("no worker could be started to take it")

    # --- decisions --------------------------------------------------------------------------------------------

    def _prepare_more(self) -> list[Entry]:
        """Up to PREPARED_PER_SLOT files a slot and PREPARED_S_PER_WORKER of audio a worker ahead; one
        file always (however long)."""
        workers = max(1, len(self.workers))
        sent = []
        while self.waiting and len(self.preparing) + len(self.queued) < PREPARED_PER_SLOT * self.slots * workers and (
                not (self.preparing or self.queued) or self._ahead_s() < PREPARED_S_PER_WORKER * workers):
            entry = self.waiting.popleft()
            self.preparing[entry.position] = entry
            sent.append(entry)
        return sent

    def _ahead_s(self) -> float:
        return sum(entry.item.seconds for entry in (*self.preparing.values(), *self.queued))

    def _give_alone(self) -> list[Task]:
        tasks = []
        while self.alone and (worker := self._freest()) is not None and worker.free == self.slots:
            tasks.append(self._give(worker, self.alone.popleft(), self.slots))
        return tasks

    def _give_queued(self) -> list[Task]:
        draining = self._freest() if self.alone else None  # emptying for the next file to run alone
        tasks = []
        while self.queued and (worker := self._freest(besides=draining)) is not None:
            tasks.append(self._give(worker, heapq.heappop(self.queued), 1))
        return tasks

    def _give(self, worker: Worker, entry: Entry, slots: int) -> Task:
        worker.free -= slots
        self.running += 1
        return Task(entry, worker, slots)

    def _freest(self, besides: Worker | None = None) -> Worker | None:
        """The worker with the most free slots (the first of equals), if any has one."""
        free = [worker for worker in self.workers.values() if worker is not besides and worker.free > 0]
        return max(free, key=lambda worker: worker.free, default=None)

    def _fail_if_no_worker(self) -> list[Failure]:
        return [] if self.workers else self._fail_the_rest(f"no worker is left ({self.no_worker_because})")

    def _fail_the_rest(self, reason: str) -> list[Failure]:
        rest = [*self.preparing.values(), *self.queued, *self.alone, *self.waiting]
        self.preparing, self.queued, self.alone, self.waiting = {}, [], deque(), deque()
        return [(entry.item, f"{entry.item.relative}: {reason}") for entry in rest]
