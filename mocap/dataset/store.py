"""Crash-safe dataset files: a ``kill -9`` at any instant leaves a dataset that opens, lists only complete
takes and accepts the next build.

HDF5 is not journaled: a writer killed while it changes a file in place can leave it unreadable. So
the dataset file is never changed in place. While a build runs, each complete take is written to its
own small file in a folder beside the dataset (``data.h5.pending/<take>.h5``, under a temporary name,
fsynced and renamed) and each event (take committed, take failed) is appended to
``data.h5.pending/events.jsonl`` (flushed and fsynced per line; a committed take also carries its
event). A commit writes a new dataset under a temporary name (the old file's takes and log, the
pending takes and events, a fresh ``/index``), fsyncs it and renames it over the old one: the dataset
is always either the old or the new complete version. Only then are the pending files removed (a take
or event already in the dataset is never added twice). One build at a time holds a lock on the folder
(released by the kernel when its process dies).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
import uuid
from pathlib import Path

import h5py
import numpy as np

from mocap.dataset import KIND, SCHEMA_VERSION
from mocap.dataset.compat import INDEX_FIELDS, TakeMismatchError, group_signature, mismatch, take_signature

log = logging.getLogger(__name__)

EVENTS = "events.jsonl"
EVENT_ATTR = "_commit_event"  # the committed event carried by a pending take file


def pending_dir(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".pending")


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _is_tmp(path: Path) -> bool:
    return path.name.startswith(".") and ".tmp-" in path.name


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_dataset(path: str | Path) -> h5py.File:
    """The dataset opened read-only; ValueError naming the file when it is not a readable mocap dataset."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such dataset file")
    if not path.is_file():
        raise ValueError(f"{path}: not a file")
    if not h5py.is_hdf5(path):
        raise ValueError(f"{path}: not a mocap dataset (not an HDF5 file, {path.stat().st_size} bytes)")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{path}: not a readable HDF5 file ({e})") from e
    try:
        kind = f.attrs.get("kind")
        if kind != KIND:
            raise ValueError(f"{path}: not a mocap dataset (kind {kind!r})")
        version = int(f.attrs.get("schema_version", -1))
        if version > SCHEMA_VERSION:
            raise ValueError(f"{path}: dataset schema version {version} is newer than this mocap reads "
                             f"({SCHEMA_VERSION})")
        if not isinstance(f.get("takes"), h5py.Group):
            raise ValueError(f"{path}: damaged mocap dataset (no /takes group)")
    except (ValueError, OSError, KeyError, TypeError) as e:
        f.close()
        raise ValueError(str(e) if isinstance(e, ValueError) else f"{path}: damaged mocap dataset ({e})") from e
    return f


def read_events(path: Path) -> list[dict]:
    """Events of a JSON-lines file; a line cut short by a crash is skipped."""
    if not path.is_file():
        return []
    events = []
    for line in path.read_bytes().splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if isinstance(e, dict):
            events.append(e)
    return events


def dataset_events(f: h5py.File) -> list[dict]:
    return [json.loads(x) for x in f["log"].asstr()[()]] if "log" in f else []


def new_event(**fields) -> dict:
    return {"id": uuid.uuid4().hex} | fields | {"time": time.strftime("%Y-%m-%dT%H:%M:%S")}


def write_arrays(g: h5py.Group, data: dict, cfg) -> None:
    """A take's arrays and attributes into group ``g`` (chunked by frames and compressed)."""
    for name, arr in data["arrays"].items():
        arr = np.asarray(arr)
        if arr.dtype.kind == "U":  # names (cameras/model): HDF5 variable-length UTF-8 strings
            arr = arr.astype(object).astype(h5py.string_dtype())
        if name == "keypoints2d" and cfg.float16_2d:
            arr = arr.astype(np.float16)
        elif arr.dtype.kind == "f":
            arr = arr.astype(np.float32)
        kw = {}
        if arr.ndim >= 1 and arr.shape[0] > 1 and name.split("/")[0] not in ("cameras", "skeleton"):
            kw = {"chunks": (min(cfg.chunk_frames, arr.shape[0]),) + arr.shape[1:],
                  "compression": cfg.compression, "compression_opts": cfg.level if cfg.compression == "gzip" else None}
        g.create_dataset(name, data=arr, **kw)
    for k, v in data["attrs"].items():
        g.attrs[k] = v


def write_index(f: h5py.File, old: h5py.File | None = None) -> None:
    """Contiguous copies of points3d and rotations over all takes (sorted by id) for the memory-mapped
    reader; takes already indexed in ``old`` are copied from its index (no decompression)."""
    if "index" in f:
        del f["index"]
    ids = sorted(f["takes"])
    g = f.create_group("index")
    g.create_dataset("take_ids", data=np.array(ids, dtype=h5py.string_dtype()))
    lengths = [f["takes"][t]["points3d"].shape[0] for t in ids]
    g.create_dataset("take_start", data=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))
    old_rows = {}
    if old is not None and "index/take_ids" in old:
        old_ids = old["index/take_ids"].asstr()[()]
        starts = old["index/take_start"][()]
        old_rows = {t: (int(a), int(b)) for t, a, b in zip(old_ids, starts[:-1], starts[1:], strict=True)}
    for name in INDEX_FIELDS:
        if not ids:
            continue
        shape = (int(sum(lengths)),) + f["takes"][ids[0]][name].shape[1:]
        for t in ids:  # the commit refuses such takes; a file written in place (benchmarks) may still hold one
            if f["takes"][t][name].shape[1:] != shape[1:]:
                raise TakeMismatchError(f"take {t}: {name} of {f['takes'][t][name].shape[1:]} per frame, take "
                                        f"{ids[0]} {shape[1:]}: a dataset's takes hold one keypoint set and one "
                                        "skeleton")
        ds = g.create_dataset(name, shape=shape, dtype=np.float32)  # contiguous: memory-mapped by readers
        pos = 0
        for t, n in zip(ids, lengths, strict=True):
            rows = old_rows.get(t)
            if rows is not None and rows[1] - rows[0] == n and f"index/{name}" in old:
                ds[pos:pos + n] = old["index"][name][rows[0]:rows[1]]
            else:
                ds[pos:pos + n] = f["takes"][t][name][()]
            pos += n


class Writer:
    """The one writer of a dataset: ``with Writer(out) as w: w.add_take(...); w.commit()``."""

    def __init__(self, out: str | Path):
        self.out = Path(out)
        self.pending = pending_dir(self.out)
        self._fd: int | None = None
        self._committed: set[str] = set()
        self.last_commit = time.monotonic()
        self.commit_seconds = 0.0
        self._reference: tuple[str, dict] | None = None  # (take, signature) that every take must match
        self.rejected: dict[str, str] = {}  # pending takes a commit refused (unlike the dataset's): why

    # -- lock and recovery -------------------------------------------------------------------------
    def __enter__(self) -> Writer:
        if self.out.exists():
            open_dataset(self.out).close()  # refuse a file that is not a dataset: it is never overwritten
        while True:
            self.pending.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.pending, os.O_RDONLY | os.O_DIRECTORY)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as e:
                os.close(fd)
                raise RuntimeError(f"{self.out}: another build is writing this dataset (lock on {self.pending})") from e
            try:
                same = os.stat(self.pending).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the folder was removed by a build that just finished: lock the new one
        self._fd = fd
        self._recover()
        return self

    def __exit__(self, *exc) -> None:
        try:
            if not any(self.pending.iterdir()):
                self.pending.rmdir()
        except OSError as e:
            log.debug("kept %s: %s", self.pending, e)
        finally:
            os.close(self._fd)
            self._fd = None

    def _recover(self) -> None:
        """Remove what a killed writer left half-done; make sure the dataset file exists."""
        for p in [*self.pending.iterdir(), *self.out.parent.glob(f".{self.out.name}.tmp-*")]:
            if _is_tmp(p):
                log.info("removing %s (left by an interrupted build)", p)
                p.unlink()
        events = self.pending / EVENTS
        if events.is_file() and events.stat().st_size:
            with open(events, "rb+") as fh:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":  # a line cut short: the next event starts on its own line
                    fh.write(b"\n")
                    fh.flush()
                    os.fsync(fh.fileno())
        if self.out.exists():
            with open_dataset(self.out) as f:
                self._committed = set(f["takes"])
        else:
            self.commit(force=True)

    # -- pending takes and events ------------------------------------------------------------------
    def pending_takes(self) -> dict[str, Path]:
        return {p.stem: p for p in sorted(self.pending.glob("*.h5")) if not _is_tmp(p)}

    def _pending_in_order(self) -> dict[str, Path]:
        """Waiting take files in the order they were added (their events), then by name."""
        takes = self.pending_takes()
        order = [e["take"] for e in read_events(self.pending / EVENTS)
                 if e.get("status") == "committed" and e.get("take") in takes]
        return {t: takes[t] for t in dict.fromkeys([*order, *takes])}

    def reference(self) -> tuple[str, dict] | None:
        """The take whose keypoint set and skeleton every take must share: the dataset's (its first take),
        else the first waiting one; None while there is none."""
        if self._reference is None and self.out.exists():
            with open_dataset(self.out) as f:
                first = sorted(f["takes"])[:1]
                if first:
                    self._reference = first[0], group_signature(f["takes"][first[0]])
        if self._reference is None:
            for t, path in self._pending_in_order().items():
                with h5py.File(path, "r") as f:
                    self._reference = t, group_signature(f)
                break
        return self._reference

    def check_take(self, tid: str, sig: dict) -> None:
        """TakeMismatchError (naming both) when the take's keypoint set or skeleton differs from the dataset's."""
        ref = self.reference()
        problem = None if ref is None or ref[0] == tid else mismatch(tid, sig, ref[0], ref[1], self.out)
        if problem:
            raise TakeMismatchError(problem)

    def done(self) -> set[str]:
        """Takes that need no work: in the dataset or waiting in the pending folder."""
        return self._committed | set(self.pending_takes())

    def log_event(self, event: dict) -> None:
        """Append one event (flushed and fsynced: once this returns, a crash does not lose it)."""
        with open(self.pending / EVENTS, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(event) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def add_take(self, tid: str, data: dict, cfg, event: dict) -> None:
        """Write a complete take file (temporary name, fsync, rename), then log its event. TakeMismatchError (nothing
        written) when its keypoint set or skeleton differs from the dataset's."""
        sig = take_signature(data)
        self.check_take(tid, sig)
        if self._reference is None:
            self._reference = tid, sig
        path = self.pending / f"{tid}.h5"
        tmp = _tmp_name(path)
        with h5py.File(tmp, "w") as f:
            write_arrays(f, data, cfg)
            f.attrs[EVENT_ATTR] = json.dumps(event)
        fsync_file(tmp)
        os.replace(tmp, path)
        fsync_dir(self.pending)
        self.log_event(event)

    def commit_due(self, every_s: float) -> bool:
        waited = time.monotonic() - self.last_commit
        return bool(self.pending_takes()) and waited >= max(every_s, 4 * self.commit_seconds)

    # -- commit ------------------------------------------------------------------------------------
    def commit(self, force: bool = False) -> bool:
        """Rewrite the dataset with the pending takes and events (old or new file, never half)."""
        takes = self._pending_in_order()  # the first one sets the dataset's keypoint set and skeleton when new
        events_file = self.pending / EVENTS
        if not force and not takes and not events_file.is_file():
            return False
        t0 = time.monotonic()
        tmp = _tmp_name(self.out)
        with contextlib.ExitStack() as stack:
            old = stack.enter_context(open_dataset(self.out)) if self.out.exists() else None
            dst = stack.enter_context(h5py.File(tmp, "w"))
            dst.attrs["kind"], dst.attrs["schema_version"] = KIND, SCHEMA_VERSION
            g = dst.create_group("takes")
            events = dataset_events(old) if old is not None else []
            if old is not None:
                for t in old["takes"]:
                    old.copy(old["takes"][t], g, name=t)
            new_events, carried, rejected = read_events(events_file), [], {}
            for t, path in takes.items():
                if t in g:  # already committed (a crash came after the rename, before the clean-up)
                    continue
                with h5py.File(path, "r") as src:
                    try:  # left by a build of a version that did not check (it would break /index for good)
                        self.check_take(t, group_signature(src))
                    except TakeMismatchError as e:
                        rejected[t] = str(e)
                        log.warning("%s", e)
                        new_events.append(new_event(take=t, status="failed", error=str(e)))
                        continue
                    src.copy(src["/"], g, name=t)
                if EVENT_ATTR in g[t].attrs:
                    carried.append(json.loads(g[t].attrs[EVENT_ATTR]))
                    del g[t].attrs[EVENT_ATTR]
            events += [e for e in new_events if not (e.get("status") == "committed" and e.get("take") in rejected)]
            events += carried
            seen, unique = set(), []
            for e in events:
                if e.get("id") is None or e["id"] not in seen:
                    seen.add(e.get("id"))
                    unique.append(e)
            lines = np.array([json.dumps(e) for e in unique], dtype=h5py.string_dtype())
            dst.create_dataset("log", data=lines, maxshape=(None,), chunks=(64,))
            write_index(dst, old)
            committed = set(g)
        fsync_file(tmp)
        os.replace(tmp, self.out)
        fsync_dir(self.out.parent)
        for path in takes.values():
            path.unlink()
        events_file.unlink(missing_ok=True)
        fsync_dir(self.pending)
        self._committed = committed
        self.rejected |= rejected
        self.last_commit = time.monotonic()
        self.commit_seconds = self.last_commit - t0
        log.info("%s: committed %d new takes (%d in all) in %.2f s", self.out, len(takes) - len(rejected),
                 len(committed), self.commit_seconds)
        return True


def info(path: str | Path) -> dict:
    """Summary of a dataset; ValueError naming the file when it is not one (or is damaged)."""
    path = Path(path)
    with open_dataset(path) as f:
        try:
            takes = f["takes"]
            frames = {t: int(takes[t].attrs["frames"]) for t in takes}
            events = dataset_events(f)
            out = {"schema_version": int(f.attrs["schema_version"]), "takes": len(frames),
                   "frames": int(sum(frames.values())),
                   "fps": sorted({float(takes[t].attrs["fps"]) for t in takes}),
                   "keypoint_sets": sorted({str(takes[t].attrs["keypoint_set"]) for t in takes}),
                   "synthetic": sum("groundtruth" in takes[t] for t in takes)}
        except (OSError, KeyError, ValueError, TypeError) as e:
            raise ValueError(f"{path}: damaged mocap dataset ({type(e).__name__}: {e})") from e
    pend = pending_dir(path)
    ids = {e.get("id") for e in events}
    events += [e for e in read_events(pend / EVENTS) if e.get("id") not in ids]
    waiting = [p for p in pend.glob("*.h5") if not _is_tmp(p) and p.stem not in frames]
    return out | {"failed": [e for e in events if e.get("status") == "failed"],
                  "pending": len(waiting),  # complete takes that the next commit (or build) adds
                  "size_mb": path.stat().st_size / 1e6, "per_take_frames": frames}
