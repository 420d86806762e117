"""The one exception type for problems a user can cause and fix."""

from __future__ import annotations

import functools


class HushError(Exception):
    """A problem the user can fix; its message is meant for a person: what, where, what to do.

    Surfaces (CLI, web, API) show the message and never a traceback.
    """

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.source, self.detail = source, message  # which file, and what is wrong with it
        super().__init__(f"{source}: {message}" if source else message)

    def __reduce__(self):  # whole across processes (a server's decoding pool), its source kept apart
        return functools.partial(type(self), source=self.source), (self.detail,)
