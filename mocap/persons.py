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
# filter that names them in every line logged meanwhile (a solver's own lines do not know whose points they are)
_about: ContextVar[str | None] = ContextVar("mocap_person", default=None)


@contextmanager
def speaking_of(name: str | None) -> Iterator[None]:
    """Inside the block, the lines this project logs (through a handler with :func:`name_person`) start with
    ``name:`` (None: as they are). Per thread and task (a context variable)."""
    token = _about.set(name)
    try:
        yield
    finally:
        _about.reset(token)


def name_person(record: logging.LogRecord) -> bool:
    """A handler's filter: a line logged inside :func:`speaking_of` gets the person's name in front (once,
    however many handlers see the record; not again where the message already starts with it)."""
    name = _about.get()
    if name and not getattr(record, "person", None):
        record.person = name
        text = record.getMessage()
        if not text.startswith(f"{name}:") and not text.startswith(f"{name} "):
            record.msg, record.args = f"{name}: {text}", None
    return True
