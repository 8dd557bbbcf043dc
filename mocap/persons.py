"""The people of a take: one naming rule for every file, table and armature.

A take with one person keeps today's names (``motion/body22.npz``, ``export/<session>_body22.bvh``).
With several, person ``p`` (0-based index on the persons axis of ``points3d/*.h5``) is called
``person{p+1}`` and every per-person file carries it: ``motion/body22_person2.npz``,
``export/<session>_person2_body22.bvh``, the report's sections and the Blender armatures.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


def person_name(p: int) -> str:
    """``person1`` for index 0."""
    if p < 0:
        raise ValueError(f"person index must be ≥ 0, got {p}")
    return f"person{p + 1}"


def person_suffix(p: int, persons: int) -> str:
    """``""`` in a one-person take, else ``_person{p+1}`` (appended to a file stem)."""
    return "" if persons == 1 else f"_{person_name(p)}"


# the person the current work is about (several people: the stages that go person by person say so), and the log
# format that names them in every line logged meanwhile (a solver's own lines do not know whose points they are)
_about: ContextVar[str | None] = ContextVar("mocap_person", default=None)


@contextmanager
def speaking_of(name: str | None) -> Iterator[None]:
    """Inside the block, the lines this project logs through a :class:`NamedFormatter` start with ``name:`` (None:
    as they are). Per thread and task (a context variable; :func:`mocap.threads.thread_map` carries it)."""
    token = _about.set(name)
    try:
        yield
    finally:
        _about.reset(token)


class NamedFormatter(logging.Formatter):
    """A format ending in ``%(message)s`` whose lines logged inside :func:`speaking_of` get the person's name in front
    of the message (not again where the message already starts with it). The record itself is left as it is: other
    handlers (and pytest's caplog) see the message as logged. Handlers format in the thread that logs."""

    def __init__(self, fmt: str, datefmt: str | None = None):
        if not fmt.endswith("%(message)s"):
            raise ValueError(f"NamedFormatter: the format must end with %(message)s, got {fmt!r}")
        super().__init__(fmt, datefmt)

    def formatMessage(self, record: logging.LogRecord) -> str:
        text, name = super().formatMessage(record), _about.get()
        message = record.message  # set by format() before this
        if not name or message.startswith(f"{name}:") or message.startswith(f"{name} "):
            return text
        return f"{text[:len(text) - len(message)]}{name}: {message}"
