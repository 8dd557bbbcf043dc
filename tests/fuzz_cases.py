# ruff: noqa: E501  (the XFAIL reasons at the end are long on purpose)
"""Malformed-input cases for tests/test_fuzz.py (issue 13).

Each case corrupts a copy of a small synthetic session that has been run once (every output present),
then names the ``mocap`` command line to run on it. ``make(ctx)`` gets ``ctx.s`` (the session folder)
and ``ctx.w`` (a scratch folder outside the session for input files and outputs of non-session
commands) and returns the argument list. ``names``: strings the error message must contain (the file's
name at least, and the key / camera / line where the case has one). ``rc``: 2 (a clear error) or 0 (the
input is legitimately tolerated; ``why`` says why). ``xfail``: the library bug the case still shows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
GARBAGE = bytes(np.random.default_rng(13).integers(0, 256, 4096, dtype=np.uint8))  # deterministic binary junk


@dataclass
class Ctx:
    s: Path  # the session
    w: Path  # scratch space outside the session
    bvh: str = ""  # a valid BVH text


@dataclass
class Case:
    id: str
    kind: str
    make: Callable[[Ctx], list[str]]
    names: tuple[str, ...] = ()
    rc: int = 2
    why: str = ""  # rc 0: why the input is tolerated
    xfail: str | None = None
    check: Callable[[Ctx, str], None] | None = None  # extra assertions after the command (ctx, stderr)
    keep: bool = True  # outputs that existed before must be byte-identical after
    slow: bool = False
    extra: dict = field(default_factory=dict)


CASES: list[Case] = []


def case(id: str, kind: str, make, names=(), **kw) -> None:
    CASES.append(Case(id, kind, make, tuple(names), **kw))


# ----- editing helpers --------------------------------------------------------------------------------

def sub(path: Path, old: str, new: str, count: int = 1, regex: bool = False) -> Path:
    text = path.read_text()
    if regex:
        out, n = re.subn(old, new, text, count=count)
        assert n, (path, old)
    else:
        assert old in text, (path, old)
        out = text.replace(old, new, count)
    path.write_text(out)
    return path


def truncate(path: Path, fraction: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def h5edit(path: Path, fn) -> Path:
    import h5py

    with h5py.File(path, "r+") as f:
        fn(f)
    return path


def h5replace(name: str, value):
    def fn(f):
        del f[name]
        f[name] = value
    return fn


def h5attr(name: str, value):
    def fn(f):
        if value is None:
            del f.attrs[name]
        else:
            f.attrs[name] = value
    return fn


def h5strings(values):
    import h5py

    return np.array(values, dtype=h5py.string_dtype())


def npz_edit(path: Path, drop=(), **changes) -> Path:
    z = dict(np.load(path, allow_pickle=False))
    for k in drop:
        del z[k]
    z.update(changes)
    with open(path, "wb") as f:
        np.savez(f, **z)
    return path


def rig(ctx: Ctx) -> Path:
    return ctx.s / "calibration" / "rig.toml"


def run(ctx: Ctx, *extra: str) -> list[str]:
    return ["run", str(ctx.s), *extra]


def rig_case(id, old, new, names, count=1, regex=False, **kw):
    def make(ctx):
        sub(rig(ctx), old, new, count, regex)
        return run(ctx)
    case(id, "rig.toml", make, ("rig.toml", *names), **kw)


def rig_bytes(id, content: bytes, names=(), **kw):
    def make(ctx):
        rig(ctx).write_bytes(content)
        return run(ctx)
    case(id, "rig.toml", make, ("rig.toml", *names), **kw)


# ----- the cases, by kind: each module registers its own with case() ------------------------------------
from fuzz_cases_files import _as_format, to_json, write_qca  # noqa: E402,F401
from fuzz_cases_tools import bvh_text  # noqa: E402,F401

# ----- library bugs these cases still show (issue 13); the lead removes an entry when it is fixed ----------------

XFAIL = {
}
for _c in CASES:
    _c.xfail = XFAIL.get(_c.id, _c.xfail)
assert set(XFAIL) <= {c.id for c in CASES}
