"""A small FBX binary reader for the tests (independent of mocap.io.fbx_binary): the node tree, and the
world positions of an armature's joints on every frame computed from the file alone (numpy)."""

from __future__ import annotations

import struct
import zlib

import numpy as np

MAGIC = b"Kaydara FBX Binary  \x00\x1a\x00"
SCALARS = {b"C": ("<B", 1), b"B": ("<?", 1), b"Y": ("<h", 2), b"I": ("<i", 4), b"L": ("<q", 8), b"F": ("<f", 4),
           b"D": ("<d", 8)}
ARRAYS = {b"i": "<i4", b"l": "<i8", b"f": "<f4", b"d": "<f8", b"b": "<u1"}


class FbxNode:
    def __init__(self, name, props, children):
        self.name, self.props, self.children = name, props, children

    def find(self, name):
        return next((c for c in self.children if c.name == name), None)

    def all(self, name):
        return [c for c in self.children if c.name == name]

    def properties70(self) -> dict:
        block = self.find("Properties70")
        return {} if block is None else {p.props[0]: p.props[4:] for p in block.all("P")}


def read_fbx(data: bytes) -> tuple[int, list[FbxNode], int]:
    """(version, top-level nodes, offset where the footer starts); checks every end offset on the way."""
    assert data[:23] == MAGIC, data[:23]
    version = struct.unpack_from("<I", data, 23)[0]
    fmt = "<3Q" if version >= 7500 else "<3I"
    head = struct.calcsize(fmt)

    def node(pos):
        end, count, length = struct.unpack_from(fmt, data, pos)
        if end == 0:
            assert data[pos:pos + head + 1] == bytes(head + 1), "a null record is all zero bytes"
            return None, pos + head + 1
        n = data[pos + head]
        name = data[pos + head + 1:pos + head + 1 + n].decode()
        pos += head + 1 + n
        start, props = pos, []
        for _ in range(count):
            code = data[pos:pos + 1]
            pos += 1
            if code in SCALARS:
                f, size = SCALARS[code]
                props.append(struct.unpack_from(f, data, pos)[0])
                pos += size
            elif code in (b"S", b"R"):
                size = struct.unpack_from("<I", data, pos)[0]
                raw = data[pos + 4:pos + 4 + size]
                props.append(raw.decode() if code == b"S" else raw)
                pos += 4 + size
            elif code in ARRAYS:
                n_items, encoding, size = struct.unpack_from("<3I", data, pos)
                raw = data[pos + 12:pos + 12 + size]
                raw = zlib.decompress(raw) if encoding == 1 else raw
                a = np.frombuffer(raw, ARRAYS[code])
                assert a.size == n_items
                props.append(a.astype(bool) if code == b"b" else a)
                pos += 12 + size
            else:
                raise ValueError(f"unknown property type {code!r} in {name}")
        assert pos - start == length, (name, pos - start, length)
        children = []
        if pos < end:
            while True:
                child, pos = node(pos)
                if child is None:
                    break
                children.append(child)
        assert pos == end, (name, pos, end)
        return FbxNode(name, props, children), pos

    nodes, pos = [], 27
    while True:
        n, pos = node(pos)
        if n is None:
            return version, nodes, pos
        nodes.append(n)


def _euler_xyz_deg(a: np.ndarray) -> np.ndarray:
    """(..., 3) degrees → (..., 3, 3) R = Rz Ry Rx."""
    x, y, z = (np.radians(a[..., i]) for i in range(3))
    cx, sx, cy, sy, cz, sz = np.cos(x), np.sin(x), np.cos(y), np.sin(y), np.cos(z), np.sin(z)
    R = np.stack([cz * cy, cz * sy * sx - sz * cx, cz * sy * cx + sz * sx,
                  sz * cy, sz * sy * sx + cz * cx, sz * sy * cx - cz * sx,
                  -sy, cy * sx, cy * cx], axis=-1)
    return R.reshape(a.shape[:-1] + (3, 3))


def armature_positions(nodes: list[FbxNode]) -> tuple[list[str], np.ndarray, dict]:
    """The LimbNode names and their positions (F, J, 3) in the file's axes and units on every key, from the
    models' Lcl Translation and the R / T curves (Euler XYZ, degrees); and GlobalSettings' properties."""
    top = {n.name: n for n in nodes}
    objects = {o.props[0]: o for o in top["Objects"].children}
    parent, anim, channel = {}, {}, {}
    for c in top["Connections"].all("C"):
        if c.props[0] == "OO":
            parent[c.props[1]] = c.props[2]
        elif c.props[0] == "OP" and c.props[3] in ("Lcl Rotation", "Lcl Translation"):
            anim[(c.props[2], c.props[3])] = c.props[1]
        elif c.props[0] == "OP":
            channel.setdefault(c.props[2], {})[c.props[3]] = c.props[1]
    limbs = [u for u, o in objects.items() if o.name == "Model" and o.props[2] == "LimbNode"]
    names = [objects[u].props[1].split("\x00\x01")[0] for u in limbs]

    def curves(model, prop):
        cnode = anim.get((model, prop))
        if cnode is None:
            return None
        return np.stack([objects[channel[cnode][f"d|{a}"]].find("KeyValueFloat").props[0] for a in "XYZ"], -1)

    F = max(len(objects[u].find("KeyTime").props[0]) for u in objects if objects[u].name == "AnimationCurve")
    world_R, world_p = {}, {}
    for u in limbs:  # parents are written before their children
        props = objects[u].properties70()
        t = curves(u, "Lcl Translation")
        t = np.tile(np.array(props["Lcl Translation"], float), (F, 1)) if t is None else t.astype(float)
        r = curves(u, "Lcl Rotation")
        r = np.tile(np.array(props["Lcl Rotation"], float), (F, 1)) if r is None else r.astype(float)
        R = _euler_xyz_deg(r)
        p = parent[u]
        if p in world_R:
            world_p[u] = world_p[p] + np.einsum("fij,fj->fi", world_R[p], t)
            world_R[u] = world_R[p] @ R
        else:  # below the armature Null (at the origin, no rotation)
            world_p[u], world_R[u] = t, R
    settings = top["GlobalSettings"].properties70()
    return names, np.stack([world_p[u] for u in limbs], axis=1), settings
