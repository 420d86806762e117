"""The Ray runner's scheduler without Ray: fake events in (a worker ready or dead, a file prepared or back),
its decisions out."""

from __future__ import annotations

from pathlib import Path

import pytest

from hushscribe.batch import Item
from hushscribe.schedule import PREPARED_PER_SLOT, PREPARED_S_PER_WORKER, START_TIMEOUT_S, Decisions, Scheduler

MINUTE = 60.0
ALL_LOST = "no worker is left (every worker died and none could be replaced)"


def files(*seconds: float) -> list[Item]:
    return [Item(Path(f"f{i}.wav"), f"f{i}.wav", 1000, f"{i:064x}", s) for i, s in enumerate(seconds)]


def given(tasks) -> list[tuple[str, str, int]]:
    """Each task as (file, worker, slots taken)."""
    return [(task.entry.item.relative, task.worker.name, task.slots) for task in tasks]


def ready_scheduler(workers: int, slots: int, items: list[Item]) -> Scheduler:
    scheduler = Scheduler([f"w{i}" for i in range(workers)], slots)
    for name in scheduler.workers:
        scheduler.ready(name)
    scheduler.begin(items)
    return scheduler


def prepare_all(scheduler: Scheduler) -> list:
    """Every file sent to be prepared comes back prepared; the tasks given meanwhile, in order."""
    tasks = []
    decisions = scheduler.decide()
    while decisions.prepare or decisions.give:
        tasks += decisions.give
        for entry in decisions.prepare:
            assert scheduler.prepared(entry, None) == []
        decisions = scheduler.decide()
    return tasks


def lose(scheduler: Scheduler, task) -> list:
    """The runner's news that the worker holding `task` died: the worker first, then the file."""
    scheduler.worker_died(task)
    return scheduler.file_lost(task)


def test_files_are_decoded_while_the_workers_load_and_given_once_they_are_ready():
    scheduler = Scheduler(["w0", "w1"], 2)
    scheduler.begin(files(*[MINUTE] * 4))
    first = scheduler.decide()
    assert [e.item.relative for e in first.prepare] == ["f0.wav", "f1.wav", "f2.wav", "f3.wav"] and first.give == []
    for entry in reversed(first.prepare):  # they come back in any order
        scheduler.prepared(entry, None)
    assert scheduler.decide().give == []  # no worker is ready yet
    scheduler.ready("w0")
    scheduler.ready("w1")
    # longest first (the order given), each to the worker with the most free slots
    assert given(scheduler.decide().give) == [("f0.wav", "w0", 1), ("f1.wav", "w1", 1), ("f2.wav", "w0", 1),
                                              ("f3.wav", "w1", 1)]


def test_files_prepared_ahead_are_at_most_PREPARED_PER_SLOT_per_slot():
    slots = 6
    scheduler = ready_scheduler(1, slots, files(*[MINUTE] * 40))
    limit = PREPARED_PER_SLOT * slots
    assert len(scheduler.decide().prepare) == limit
    assert scheduler.decide().prepare == []  # none more while those are out
    tasks = []
    for entry in list(scheduler.preparing.values()):
        scheduler.prepared(entry, None)
        tasks += scheduler.decide().give
        assert len(scheduler.preparing) + len(scheduler.queued) <= limit
    assert len(tasks) == slots and scheduler.running == slots  # a worker holds no more than its slots
    scheduler.decide()
    assert len(scheduler.preparing) + len(scheduler.queued) == limit  # what went to the worker left room
    scheduler.finished(tasks[0])
    assert given(scheduler.decide().give) == [(f"f{slots}.wav", "w0", 1)]


def test_files_prepared_ahead_are_at_most_PREPARED_S_PER_WORKER_of_audio():
    hour = 3600.0
    scheduler = ready_scheduler(1, 6, files(*[hour] * 10))
    assert len(scheduler.decide().prepare) == PREPARED_S_PER_WORKER // hour
    assert len(ready_scheduler(2, 6, files(*[hour] * 20)).decide().prepare) == 2 * PREPARED_S_PER_WORKER // hour


def test_a_file_longer_than_the_audio_bound_is_still_prepared_alone():
    scheduler = ready_scheduler(1, 6, files(PREPARED_S_PER_WORKER * 3, MINUTE))
    [entry] = scheduler.decide().prepare
    assert entry.item.relative == "f0.wav" and scheduler.decide().prepare == []
    scheduler.prepared(entry, None)
    assert given(scheduler.decide().give) == [("f0.wav", "w0", 1)]
    assert [e.item.relative for e in scheduler.decide().prepare] == ["f1.wav"]  # once it is with the worker


def test_a_file_that_cannot_be_prepared_fails_and_makes_room_for_the_next():
    scheduler = ready_scheduler(1, 1, files(*[MINUTE] * 4))
    entries = scheduler.decide().prepare
    assert len(entries) == PREPARED_PER_SLOT
    assert scheduler.prepared(entries[0], "f0.wav: not audio") == [(entries[0].item, "f0.wav: not audio")]
    decisions = scheduler.decide()
    assert [e.item.relative for e in decisions.prepare] == ["f2.wav"] and decisions.give == []
    assert not scheduler.done


def test_a_worker_that_dies_is_replaced_once_and_the_files_beside_each_other_run_alone_blameless():
    scheduler = ready_scheduler(1, 3, files(*[MINUTE] * 3))
    tasks = prepare_all(scheduler)
    assert given(tasks) == [("f0.wav", "w0", 1), ("f1.wav", "w0", 1), ("f2.wav", "w0", 1)]
    dead = tasks[0].worker
    assert scheduler.worker_died(tasks[0]) is True  # the first news: a replacement starts
    assert [scheduler.worker_died(t) for t in tasks[1:]] == [False, False]  # the same death, told again
    assert all(scheduler.file_lost(t) == [] for t in tasks)
    assert [t.entry.item.lost for t in tasks] == [0, 0, 0]  # none of them held alone: none is blamed
    assert scheduler.workers["w0"] is not dead and scheduler.workers["w0"].starting
    assert scheduler.decide().give == [] and not scheduler.done  # the replacement is loading
    assert scheduler.wait_s == START_TIMEOUT_S  # nothing else to wait for: its loading is timed
    scheduler.ready("w0")
    assert given(scheduler.decide().give) == [("f0.wav", "w0", 3)]  # each alone, taking every slot
    assert scheduler.wait_s is None


def test_a_file_that_kills_its_worker_twice_alone_fails():
    scheduler = ready_scheduler(1, 1, files(MINUTE))
    [task] = prepare_all(scheduler)
    assert scheduler.worker_died(task) and scheduler.file_lost(task) == [] and task.entry.item.lost == 1
    scheduler.ready("w0")
    [again] = scheduler.decide().give
    assert again.entry is task.entry and again.worker is scheduler.workers["w0"]
    assert scheduler.worker_died(again)
    item = task.entry.item
    assert scheduler.file_lost(again) == [(item, "f0.wav: the worker died twice while holding only this file")]
    assert item.lost == 2 and scheduler.running == 0
    scheduler.ready("w0")
    assert scheduler.decide().give == [] and scheduler.done


def test_a_worker_empties_for_a_file_that_must_run_alone():
    scheduler = ready_scheduler(2, 2, files(*[MINUTE] * 5))
    tasks = prepare_all(scheduler)
    assert given(tasks) == [("f0.wav", "w0", 1), ("f1.wav", "w1", 1), ("f2.wav", "w0", 1), ("f3.wav", "w1", 1)]
    for task in tasks[0], tasks[2]:  # w0 dies holding f0 and f2
        lose(scheduler, task)
    scheduler.finished(tasks[1])
    # w1 has a free slot, but f4 waits: w1 is emptying for f0 to run on it alone
    assert scheduler.decide().give == [] and [e.item.relative for e in scheduler.queued] == ["f4.wav"]
    scheduler.finished(tasks[3])
    assert given(scheduler.decide().give) == [("f0.wav", "w1", 2)]
    scheduler.ready("w0")
    assert given(scheduler.decide().give) == [("f2.wav", "w0", 2)]


def test_a_result_from_a_worker_since_replaced_frees_no_slot():
    scheduler = ready_scheduler(1, 2, files(*[MINUTE] * 2))
    first, second = prepare_all(scheduler)
    lose(scheduler, first)
    scheduler.finished(second)  # it answered before it died
    assert scheduler.workers["w0"].free == 0 and scheduler.decide().give == []
    scheduler.ready("w0")
    assert given(scheduler.decide().give) == [("f0.wav", "w0", 2)] and scheduler.workers["w0"].free == 0


def test_a_replacement_that_never_comes_up_fails_the_files_left():
    scheduler = ready_scheduler(1, 1, files(*[MINUTE] * 4))
    [task] = prepare_all(scheduler)
    lose(scheduler, task)
    assert not scheduler.done and scheduler.wait_s == START_TIMEOUT_S
    failures = scheduler.timed_out()
    assert sorted(item.relative for item, _ in failures) == ["f0.wav", "f1.wav", "f2.wav", "f3.wav"]
    assert all(message.endswith(": no worker could be started to take it") for _, message in failures)
    assert scheduler.workers == {} and scheduler.done


def test_a_replacement_that_fails_to_load_fails_the_files_only_when_no_worker_is_left():
    scheduler = ready_scheduler(2, 1, files(*[MINUTE] * 6))
    first, second = prepare_all(scheduler)
    lose(scheduler, first)
    assert scheduler.not_replaced("w0") == [] and list(scheduler.workers) == ["w1"]
    lose(scheduler, second)
    failures = scheduler.not_replaced("w1")
    assert sorted(item.relative for item, _ in failures) == [f"f{i}.wav" for i in range(6)]
    assert all(message.endswith(f": {ALL_LOST}") for _, message in failures)
    assert scheduler.done


def test_files_still_held_by_the_last_worker_fail_once_its_replacement_failed():
    scheduler = ready_scheduler(1, 2, files(*[MINUTE] * 3))
    first, second = prepare_all(scheduler)
    lose(scheduler, first)  # the first news of w0's death: f0 is to run alone, a replacement starts
    gone = sorted((item.relative, message) for item, message in scheduler.not_replaced("w0"))
    assert gone == [("f0.wav", f"f0.wav: {ALL_LOST}"), ("f2.wav", f"f2.wav: {ALL_LOST}")]
    assert not scheduler.done  # f1 has not come back yet
    # f1 comes back from the same death: with no worker to run it alone, it fails rather than waiting for none
    assert lose(scheduler, second) == [(second.entry.item, f"f1.wav: {ALL_LOST}")]
    assert scheduler.decide() == Decisions([], []) and scheduler.done


@pytest.mark.parametrize("last_goes, because", [
    ("not_replaced", "every worker died and none could be replaced"),
    ("timed_out", f"none could be started within {START_TIMEOUT_S // 60} minutes"),
])
def test_a_run_begun_with_no_worker_left_fails_its_files_at_once(last_goes, because):
    scheduler = ready_scheduler(1, 1, files(MINUTE))
    [task] = prepare_all(scheduler)
    lose(scheduler, task)
    if last_goes == "not_replaced":
        scheduler.not_replaced("w0")
    else:
        scheduler.timed_out()
    assert scheduler.workers == {}
    retried = files(MINUTE, MINUTE)  # run_batch tries the failed files once more
    failures = scheduler.begin(retried)
    assert failures == [(item, f"{item.relative}: no worker is left ({because})") for item in retried]
    assert scheduler.decide() == Decisions([], []) and scheduler.done  # nothing decoded for no one


def test_the_run_is_done_when_every_file_is_back():
    scheduler = ready_scheduler(1, 2, files(*[MINUTE] * 3))
    tasks = prepare_all(scheduler)
    assert len(tasks) == 2 and not scheduler.done
    scheduler.finished(tasks[0])
    [last] = scheduler.decide().give
    scheduler.finished(tasks[1])
    scheduler.finished(last)
    assert scheduler.decide() == Decisions([], []) and scheduler.done


def test_a_later_run_finds_the_workers_ready():
    scheduler = ready_scheduler(1, 1, files(MINUTE))
    [task] = prepare_all(scheduler)
    scheduler.finished(task)
    scheduler.begin(files(MINUTE, MINUTE))
    assert given(prepare_all(scheduler)) == [("f0.wav", "w0", 1)] and len(scheduler.queued) == 1


@pytest.mark.parametrize("slots", [1, 6])
def test_no_worker_ever_holds_more_than_its_slots(slots):
    scheduler = ready_scheduler(2, slots, files(*[MINUTE * (30 - i) for i in range(30)]))
    order = []
    tasks = prepare_all(scheduler)
    while tasks:
        assert all(0 <= worker.free <= slots for worker in scheduler.workers.values())
        task = tasks.pop(0)
        order.append(task.entry.item.relative)
        scheduler.finished(task)
        tasks += prepare_all(scheduler)
    assert order == [f"f{i}.wav" for i in range(30)] and scheduler.done  # longest first, every one once
