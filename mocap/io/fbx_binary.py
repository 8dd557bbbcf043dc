"""The FBX binary container: a tree of named nodes with typed properties (FBX 7.4 and 7.5).

Layout (all little-endian): the 23-byte magic ``b"Kaydara FBX Binary  \\x00\\x1a\\x00"``, the version
(uint32), the top-level nodes, a null record, then the footer. A node record is its end offset (absolute,
in the file), its property count and the byte length of its properties (uint32 each up to 7.4, uint64 from
7.5), the length of its name (uint8) and the name, the properties, then its children followed by a null
record (all zero bytes, as long as a record header plus its name-length byte). A property is a type code
and its value: ``C`` bool (1 byte), ``I`` int32, ``L`` int64, ``D`` float64, ``S`` string and ``R`` raw
bytes (uint32 length then the bytes), arrays ``i`` int32, ``l`` int64, ``f`` float32, ``d`` float64,
``b`` bool (uint32 count, uint32 encoding 0 raw / 1 zlib, uint32 byte length, then the data).

Python values map to property types by their type: ``bool`` → C, ``int`` → I (:class:`Int64` → L),
``float`` → D, ``str`` / ``bytes`` → S (UTF-8), :class:`Raw` → R, a numpy array → the array of its dtype.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable

import numpy as np

MAGIC = b"Kaydara FBX Binary  \x00\x1a\x00"
# The file id, creation time and footer id the FBX SDK accepts together (it checks them against each other);
# every writer outside Autodesk's SDK writes these fixed values, the real time goes in CreationTimeStamp.
FILE_ID = bytes.fromhex("28b32aebb624ccc2bfc8b02aa92bfcf1")
CREATION_TIME = "1970-01-01 10:00:00:000"
FOOTER_ID = bytes.fromhex("fabcab09d0c8d466b176fb831cf7267e")
FOOTER_MAGIC = bytes.fromhex("f85a8c6adef5d97eece90ce3758f290b")
COMPRESS_ABOVE = 128  # arrays longer than this many bytes are zlib-compressed
ALWAYS_BLOCK = frozenset({"AnimationStack", "AnimationLayer"})  # readers expect their null record even when empty
_ARRAYS = {np.dtype("int32"): b"i", np.dtype("int64"): b"l", np.dtype("float32"): b"f", np.dtype("float64"): b"d",
           np.dtype("bool"): b"b"}


class Int64(int):
    """An int written as a 64-bit property (``L``): object ids and times."""


class Raw(bytes):
    """Bytes written as raw data (``R``), not a string."""


_NAMES_OK: set[str] = set()  # node names checked (a file uses a few dozen, thousands of times)


def _check_name(name: str) -> None:
    if name in _NAMES_OK:
        return
    if not isinstance(name, str) or not name or len(name.encode()) > 255:
        raise ValueError(f"fbx: a node name must be 1-255 bytes, got {name!r}")
    if len(_NAMES_OK) < 4096:
        _NAMES_OK.add(name)


class Node:
    """A node: ``name``, its properties (in order) and its children."""

    __slots__ = ("name", "props", "children")

    def __init__(self, name: str, *props, children: Iterable[Node] = ()):
        _check_name(name)
        self.name, self.props, self.children = name, list(props), list(children)

    def add(self, name: str, *props) -> Node:
        """A new child node, returned (to add its own children)."""
        _check_name(name)
        child = Node.__new__(Node)
        child.name, child.props, child.children = name, list(props), []
        self.children.append(child)
        return child

    def find(self, name: str) -> Node | None:
        return next((c for c in self.children if c.name == name), None)

    def __repr__(self) -> str:
        return f"Node({self.name!r}, {len(self.props)} props, {len(self.children)} children)"


def encode_property(value, level: int = 1) -> bytes:
    """One property: its type code and value (arrays over :data:`COMPRESS_ABOVE` bytes compressed at ``level``)."""
    if isinstance(value, np.ndarray):
        code = _ARRAYS.get(value.dtype)
        if code is None or value.ndim != 1:
            raise TypeError(f"fbx: arrays must be 1-D int32/int64/float32/float64/bool, got {value.dtype} "
                            f"with shape {value.shape}")
        data = value.astype(value.dtype.newbyteorder("<"), copy=False).tobytes()
        encoding = 0
        if len(data) > COMPRESS_ABOVE:
            data, encoding = zlib.compress(data, level), 1
        return code + struct.pack("<3I", value.size, encoding, len(data)) + data
    if isinstance(value, bool):
        return b"C" + bytes((int(value),))
    if isinstance(value, Int64):
        return b"L" + struct.pack("<q", value)
    if isinstance(value, int):
        return b"I" + struct.pack("<i", value)
    if isinstance(value, float):
        return b"D" + struct.pack("<d", value)
    if isinstance(value, Raw):
        return b"R" + struct.pack("<I", len(value)) + value
    if isinstance(value, str):
        value = value.encode("utf-8")
    if isinstance(value, bytes):
        return b"S" + struct.pack("<I", len(value)) + value
    raise TypeError(f"fbx: cannot write a property of type {type(value).__name__}: {value!r}")


def _head(version: int) -> tuple[str, int]:
    """The node header's struct format and the null record's length for this version."""
    fmt = "<3Q" if version >= 7500 else "<3I"
    return fmt, struct.calcsize(fmt) + 1


class _Properties:
    """:func:`encode_property` for one file, with what repeats encoded once: a file's strings (property
    types, labels, flags), whole numbers and booleans recur thousands of times, and its arrays often (every
    animation curve of a take keys the same times: compressed once instead of once per curve). The bytes
    are :func:`encode_property`'s."""

    def __init__(self, level: int):
        self.level = level
        self.scalars: dict[tuple, bytes] = {}  # (type, value): str, bytes, int, Int64, bool (not float: -0.0 == 0.0)
        self.arrays: dict[tuple, bytes] = {}  # (dtype, size, raw bytes) of the arrays that get compressed

    def __call__(self, value) -> bytes:
        t = type(value)
        if t is float:
            return b"D" + _DOUBLE.pack(value)
        if t in _CACHED:
            key = (t, value)
            out = self.scalars.get(key)
            if out is None:
                out = self.scalars[key] = encode_property(value, self.level)
            return out
        if t is np.ndarray and value.nbytes > COMPRESS_ABOVE and value.dtype in _ARRAYS and value.ndim == 1:
            key = (value.dtype.str, value.size, value.astype(value.dtype.newbyteorder("<"), copy=False).tobytes())
            out = self.arrays.get(key)
            if out is None:
                out = self.arrays[key] = encode_property(value, self.level)
            return out
        return encode_property(value, self.level)


_DOUBLE = struct.Struct("<d")
_CACHED = frozenset({str, bytes, int, bool, Int64, Raw})


def _encode_node(node: Node, out: bytearray, head: struct.Struct, null: bytes, prop) -> None:
    name = node.name.encode()
    props = b"".join([prop(p) for p in node.props])
    if node.children or not props or node.name in ALWAYS_BLOCK:
        start = len(out)
        out += null[:-1]  # the header, filled in once the end is known
        out.append(len(name))
        out += name
        out += props
        for child in node.children:
            _encode_node(child, out, head, null, prop)
        out += null
        head.pack_into(out, start, len(out), len(node.props), len(props))
    else:  # a leaf (most nodes): its end is known now
        out += head.pack(len(out) + len(null) + len(name) + len(props), len(node.props), len(props))
        out.append(len(name))
        out += name
        out += props


def encode(nodes: Iterable[Node], version: int = 7400, level: int = 1) -> bytes:
    """A whole FBX binary file from its top-level nodes (``version`` 7100-7700; 7500 and later use 64-bit
    offsets); ``level``: zlib's compression level for the arrays."""
    if not 7100 <= version < 8000:
        raise ValueError(f"fbx: binary versions 7100-7700 are written, got {version}")
    fmt, null_len = _head(version)
    null, head, prop = bytes(null_len), struct.Struct(fmt), _Properties(level)
    out = bytearray(MAGIC + struct.pack("<I", version))
    for node in nodes:
        _encode_node(node, out, head, null, prop)
    out += null
    out += FOOTER_ID + bytes(4)
    out += bytes(16 - len(out) % 16)  # to a multiple of 16 (a whole 16 when already aligned)
    out += struct.pack("<I", version) + bytes(120) + FOOTER_MAGIC
    return bytes(out)
