"""A track's per-frame history (its skeleton and body centre in each frame seen in 3D) kept compactly.

A dict of one small array per frame costs about 1 kB per (J, 3) skeleton on top of its data (the array
object, the dict entry, the frame's int): on an hour-long take of several people that is most of the
tracker's memory. :class:`FrameStore` keeps the same values (the same float64 numbers, exactly) in
blocks of ``BLOCK`` frames, one array per block, so a frame costs its data and one flag.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Mapping, MutableMapping

import numpy as np

BLOCK = 64  # frames per block: a short track (a few frames) wastes at most one block


class FrameStore(MutableMapping):
    """frame (int ≥ 0) → float64 array of one shape (the first value's); values come back read-only."""

    def __init__(self, items: Mapping | None = None):
        self._data: dict[int, np.ndarray] = {}  # block → (BLOCK, *shape)
        self._has: dict[int, np.ndarray] = {}  # block → (BLOCK,) bool
        self._n = 0
        self._shape: tuple | None = None
        self._dtype = None
        if items is not None:
            self.update(items)

    def _block(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        if b not in self._data:
            self._data[b] = np.zeros((BLOCK, *self._shape), self._dtype)
            self._has[b] = np.zeros(BLOCK, bool)
        return self._data[b], self._has[b]

    def __setitem__(self, f: int, value) -> None:
        f = int(f)
        if f < 0:
            raise KeyError(f"frame store: frames are ≥ 0, got {f}")
        value = np.asarray(value)
        if self._shape is None:
            self._shape, self._dtype = value.shape, np.float64
        elif value.shape != self._shape:
            raise ValueError(f"frame store: every value has shape {self._shape}, got {value.shape}")
        data, has = self._block(f // BLOCK)
        data[f % BLOCK] = value
        self._n += not has[f % BLOCK]
        has[f % BLOCK] = True

    def __getitem__(self, f) -> np.ndarray:
        if not self.__contains__(f):
            raise KeyError(f)
        v = self._data[int(f) // BLOCK][int(f) % BLOCK].view()
        v.flags.writeable = False
        return v

    def __contains__(self, f) -> bool:
        try:
            f = int(f)
        except (TypeError, ValueError):
            return False
        has = self._has.get(f // BLOCK) if f >= 0 else None
        return has is not None and bool(has[f % BLOCK])

    def __delitem__(self, f) -> None:
        if not self.__contains__(f):
            raise KeyError(f)
        self._has[int(f) // BLOCK][int(f) % BLOCK] = False
        self._n -= 1

    def __iter__(self) -> Iterator[int]:
        for b in sorted(self._has):
            for i in np.flatnonzero(self._has[b]):
                yield b * BLOCK + int(i)

    def __len__(self) -> int:
        return self._n

    def update(self, other=(), /, **kw) -> None:
        """As dict.update; another FrameStore is copied block by block."""
        if not isinstance(other, FrameStore) or kw:
            super().update(other, **kw)
            return
        for b, has in other._has.items():
            if not has.any():
                continue
            if self._shape is None:
                self._shape, self._dtype = other._shape, other._dtype
            elif other._shape != self._shape:
                raise ValueError(f"frame store: every value has shape {self._shape}, got {other._shape}")
            data, mine = self._block(b)
            self._n += int(np.sum(has & ~mine))
            data[has] = other._data[b][has]
            mine |= has

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._data.values()) + sum(a.nbytes for a in self._has.values())


def merged(first: Mapping, second: Mapping) -> FrameStore:
    """``{**first, **second}`` as a FrameStore (second's values win)."""
    out = FrameStore(first)
    out.update(second)
    return out


class ViewSet:
    """A set of (frame, view, slot) (the detections whose keypoints were told from the other people's), kept
    as one packed int64 per member (a set of tuples costs ~100 bytes each); iteration yields the tuples."""

    def __init__(self, items=()):
        self._keys = array("q")
        self.update(items)

    @staticmethod
    def _pack(f: int, c: int, s: int) -> int:
        if not (0 <= c < 1 << 8 and 0 <= s < 1 << 8 and f >= 0):
            raise ValueError(f"view set: (frame, view, slot) must be ≥ 0 with view and slot < 256, got {(f, c, s)}")
        return (int(f) << 16) | (int(c) << 8) | int(s)

    def add(self, item) -> None:
        self._keys.append(self._pack(*item))

    def update(self, items) -> None:
        if isinstance(items, ViewSet):
            self._keys.extend(items._keys)
        else:
            self._keys.extend(self._pack(*t) for t in items)

    def __ior__(self, items) -> ViewSet:
        self.update(items)
        return self

    def __iter__(self):
        for k in np.unique(np.frombuffer(self._keys, np.int64)) if len(self._keys) else ():
            yield int(k) >> 16, (int(k) >> 8) & 0xFF, int(k) & 0xFF

    def __contains__(self, item) -> bool:
        try:
            k = self._pack(*item)
        except (TypeError, ValueError):
            return False
        return bool(len(self._keys)) and bool(np.any(np.frombuffer(self._keys, np.int64) == k))

    def __len__(self) -> int:
        return len(np.unique(np.frombuffer(self._keys, np.int64))) if len(self._keys) else 0
