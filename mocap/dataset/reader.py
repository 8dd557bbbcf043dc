"""Reading a dataset as windows of T frames: random access through memory maps of /index.

``Windows`` is a plain sequence (numpy); ``TorchWindows`` wraps it as a ``torch.utils.data.Dataset``
(each DataLoader worker opens its own maps). ``iter_batches`` is a shuffled numpy iterator. ``take_rig`` is a
take's cameras as a :class:`mocap.types.Rig` (with their lens model)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mocap.dataset.store import INDEX_FIELDS, open_dataset


def _identity(path: Path) -> tuple[int, int, int, int]:
    st = path.stat()
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


class Windows:
    """All windows [s, s + T) inside single takes (every ``stride`` frames)."""

    def __init__(self, path: str | Path, length: int = 32, stride: int = 1, fields: tuple[str, ...] = ("points3d",)):
        self.path, self.length, self.fields = Path(path), int(length), tuple(fields)
        self._identity = _identity(self.path)  # a build replaces the file: maps must never read another one
        with open_dataset(self.path) as f:
            if "index" not in f:
                raise ValueError(f"{path}: no /index (the build did not finish; run mocap dataset build again)")
            self.take_ids = [t.decode() if isinstance(t, bytes) else str(t) for t in f["index/take_ids"][()]]
            starts = f["index/take_start"][()]
            self._layout = {}
            for name in self.fields if self.take_ids else ():  # an empty dataset has no windows
                if name not in f["index"]:
                    raise ValueError(f"{path}: no /index/{name} (fields: {', '.join(INDEX_FIELDS)})")
                ds = f["index"][name]
                offset = ds.id.get_offset()
                if offset is None:
                    raise ValueError(f"{path}: /index/{name} is not contiguous")
                self._layout[name] = (offset, ds.shape, ds.dtype)
        firsts = [np.arange(a, b - self.length + 1, stride) for a, b in zip(starts[:-1], starts[1:], strict=True)]
        self.starts = np.concatenate(firsts) if firsts else np.zeros(0, int)
        self.take_of = np.concatenate([np.full(len(x), i) for i, x in enumerate(firsts)]) if firsts else self.starts
        self._maps = None

    def _open(self) -> dict:
        if self._maps is None:
            if _identity(self.path) != self._identity:
                raise RuntimeError(f"{self.path}: the dataset was rewritten (by a build) since it was opened; "
                                   "open it again")
            self._maps = {n: np.memmap(self.path, dtype=d, mode="r", offset=o, shape=s)
                          for n, (o, s, d) in self._layout.items()}
        return self._maps

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        s = self.starts[i]
        maps = self._open()
        return {n: np.array(m[s:s + self.length]) for n, m in maps.items()}

    def batch(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        """(B, T, ...) arrays for window indices ``idx``."""
        maps = self._open()
        rows = self.starts[np.asarray(idx)][:, None] + np.arange(self.length)
        return {n: m[rows] for n, m in maps.items()}

    def __getstate__(self):  # picklable for DataLoader workers: maps reopen lazily
        state = dict(self.__dict__)
        state["_maps"] = None
        return state


def take_rig(path: str | Path, take: str):
    """The cameras of take ``take`` as a :class:`mocap.types.Rig`: ``cameras/dist`` holds 5 coefficients padded
    with zeros, ``cameras/model`` the lens model (pinhole: k1, k2, p1, p2, k3; fisheye: k1..k4); files built
    before it was stored hold pinhole cameras."""
    import json

    from mocap.geometry.camera import DIST_SIZES
    from mocap.types import Camera, Rig

    with open_dataset(path) as f:
        if take not in f["takes"]:
            raise KeyError(f"{path}: no take {take!r} (takes: {', '.join(sorted(f['takes'])[:10])})")
        g = f["takes"][take]
        c = {k: g["cameras"][k][()] for k in g["cameras"]}
        names = json.loads(g.attrs["camera_names"])
    models = [m.decode() if isinstance(m, bytes) else str(m) for m in c.get("model", ["pinhole"] * len(names))]
    return Rig([Camera(n, K.astype(float), d[:DIST_SIZES[m]].astype(float), T.astype(float), tuple(size), m)
                for n, K, d, T, size, m in zip(names, c["K"], c["dist"], c["cam_from_world"], c["size"], models,
                                               strict=True)])


def iter_batches(path: str | Path, length: int = 32, batch: int = 64, shuffle: bool = True, seed: int = 0,
                 fields: tuple[str, ...] = ("points3d",)) -> Iterator[dict[str, np.ndarray]]:
    w = Windows(path, length, fields=fields)
    order = np.random.default_rng(seed).permutation(len(w)) if shuffle else np.arange(len(w))
    for k in range(0, len(order), batch):
        yield w.batch(order[k:k + batch])


def torch_dataset(path: str | Path, length: int = 32, stride: int = 1, fields: tuple[str, ...] = ("points3d",)):
    """A ``torch.utils.data.Dataset`` of windows (dicts of float tensors)."""
    import torch
    from torch.utils.data import Dataset

    class TorchWindows(Dataset):
        def __init__(self):
            self.windows = Windows(path, length, stride, fields)

        def __len__(self):
            return len(self.windows)

        def __getitem__(self, i):
            return {k: torch.from_numpy(v) for k, v in self.windows[i].items()}

    return TorchWindows()
