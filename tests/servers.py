"""Starting hushscribe's servers as subprocesses for tests: a free port, and waiting until one answers."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, seconds: float = 300) -> None:
    """Poll `url` until it answers; AssertionError with the server's output if it exits or never does."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited: {process.stdout.read()[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise AssertionError(f"the server did not answer {url} within {seconds:.0f} s: {process.communicate()[0][-2000:]}")


def sigint_as_in_a_terminal() -> None:
    """preexec_fn for a child that is sent Ctrl-C: SIGINT as a terminal leaves it, even when the tests run in the
    background (a shell starts background jobs with SIGINT ignored, children inherit that, and Python then never
    raises KeyboardInterrupt)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
