"""Temporary data: private folders (mode 0700) under one root, gone when their owner is done.

Every hushscribe process that may hold a user's audio on disk (the API server's uploads, anything a
library spools) takes one process folder and points Python's `tempfile` at it, so libraries'
temporary files land there too; each API request holds its upload in a job folder inside it,
removed in `finally`. A process killed with SIGKILL runs no `finally`: the next hushscribe process
removes the folders of processes that no longer run. The root is $HUSHSCRIBE_TMPDIR, else the
system's temporary folder.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

ROOT_ENV = "HUSHSCRIBE_TMPDIR"
PREFIX = "hushscribe-"  # then the owning process id and a random part: hushscribe-1234-k2j3h4


def root() -> Path:
    folder = Path(os.environ.get(ROOT_ENV) or tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    return folder


_process_folder: Path | None = None


def process_folder() -> Path:
    """This process's private folder (made once, 0700), which `tempfile` now uses too; removed at
    exit. Stale folders of dead hushscribe processes are removed first."""
    global _process_folder
    if _process_folder is None or not _process_folder.is_dir():
        remove_stale()
        _process_folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=root()))
        tempfile.tempdir = str(_process_folder)
        atexit.register(shutil.rmtree, _process_folder, ignore_errors=True)
    return _process_folder


@contextlib.contextmanager
def job_folder() -> Iterator[Path]:
    """A private folder for one job's files, removed when the job ends, however it ends."""
    folder = Path(tempfile.mkdtemp(prefix="job-", dir=process_folder()))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_stale() -> list[Path]:
    """Remove our folders whose process no longer runs. Returns what was removed."""
    removed = []
    for folder in root().glob(f"{PREFIX}*"):
        try:
            pid = int(folder.name[len(PREFIX):].split("-", 1)[0])
            mine = folder.is_dir() and folder.stat().st_uid == os.getuid()
        except (ValueError, OSError):
            continue
        if mine and pid != os.getpid() and not _running(pid):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True
