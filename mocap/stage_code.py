"""What a stage's results depend on in code: the first-party modules its module imports, directly or through
others, hashed into the stage's cache key (:func:`mocap.pipeline_state._key`), so that updating the package re-runs
the stages whose code changed (and, through their outputs, the stages after them), and only those: a change to
the fit does not re-run detection.

The imports are read from the source, not executed: every ``import`` and ``from ... import`` statement of a file
(at module level or inside a function, after a ``;`` or a one-line ``if ...:``, continued over lines), and the
registries' targets written as strings (``"mocap.io.bvh"``, ``"mocap.detect.onnx:OnnxPose"``). First-party: the
``mocap`` package and the registered stages' top-level packages (the calibration package's stage). A package
counts by its own file for the modules inside it, not by everything its ``__init__`` imports (``mocap/__init__.py``
reaches the whole pipeline from inside a function); names taken from a package (``from mocap import
__version__``) bring in its module-level imports. Files are hashed with their line ends as LF.

A stage may name modules it imports that do not shape its outputs in ``CODE_IGNORED`` (detection: the work a run
starts ahead of later stages, :mod:`mocap.ahead`, and the imports put off, :mod:`mocap.warm`); they and what only
they import are left out. One deliberate exception: detection also names the camera refinement its second pass looks
through (:mod:`mocap.stages.rig_people`, :mod:`mocap.detect.recover_rig`), which shapes where it looks: a change of
that code does not redo minutes of detection (its settings are in detection's key; ``--from detect`` redoes it). The
presets shipped in ``configs/`` count too: every kind of :data:`PRESET_KINDS`, or those the stage's ``PRESETS``
names (detection: the keypoint sets). Installed packages (mediapipe, NumPy) do not."""

from __future__ import annotations

import hashlib
import logging
import re
import sys
from functools import cache
from pathlib import Path

from mocap.config_files import configs_dir

log = logging.getLogger(__name__)


def _code(line: str) -> str:
    return line.split("#", 1)[0]  # an import line holds no string a "#" could sit in


def _import_statements(text: str):
    """(indented, statement) of every ``from ... import`` and ``import`` statement: at a line's start, after a
    ``;`` or a one-line ``if ...:`` / ``try:``; continued with a backslash or in parentheses over lines, its
    comments left out."""
    pos, done = text.find("import"), -1
    while pos != -1:
        start, end = text.rfind("\n", 0, pos) + 1, text.find("\n", pos)
        end = len(text) if end == -1 else end
        if start > done:
            code = _code(text[start:end])
            while end < len(text) and (code.rstrip().endswith("\\") or code.count("(") > code.count(")")):
                nxt = text.find("\n", end + 1)
                nxt = len(text) if nxt == -1 else nxt
                code = code.rstrip().rstrip("\\") + " " + _code(text[end + 1:nxt])
                end = nxt
            done = end
            indented = code[:1] in (" ", "\t")
            for part in code.split(";"):
                part = part.strip()
                if not part.startswith(("from ", "import ")) and ":" in part:
                    part = part.rsplit(":", 1)[1].strip()  # if ...: import x
                if part.startswith(("from ", "import ")):
                    yield indented, part
        pos = text.find("import", end)


@cache
def _target(tops: tuple[str, ...]) -> re.Pattern:
    """A registry's target in quotes: ``"mocap.io.bvh"``, ``"mocap.detect.onnx:OnnxPose"`` (not a logger's name)."""
    alternatives = "|".join(map(re.escape, tops))
    return re.compile(rf"""((?:{alternatives})(?:\.\w+)+)(?::\w+)?["']""")  # a literal first: a fast search


def _names(text: str) -> list[str]:
    """``a as b, c`` (or parenthesised) → ``["a", "c"]``."""
    text = text.replace("(", " ").replace(")", " ")
    return [part.split()[0] for part in text.split(",") if part.split()]


def modules(roots: dict[str, Path]) -> dict[str, Path]:
    """Every module file of the packages ``roots`` (top-level name → folder, or file: a module alone), by dotted
    name."""
    out = {}
    for top, folder in roots.items():
        if folder.suffix == ".py":
            out[top] = folder
            continue
        for p in folder.rglob("*.py"):
            parts = p.relative_to(folder).with_suffix("").parts
            out[".".join((top, *(parts[:-1] if parts[-1] == "__init__" else parts)))] = p
    return out


def _edges(name: str, path: Path, files: dict[str, Path], tops: tuple[str, ...]) -> tuple[set[str], set[str], str]:
    """What module ``name`` (file ``path``) imports: (everywhere, at module level only), each as ``"module"``
    (followed with all its imports) or ``"=package"`` (names from the package: its module-level ones); and the
    digest of the file."""
    data = path.read_bytes()
    text = data.decode("utf-8-sig", errors="replace")
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    every: set[str] = set()
    top: set[str] = set()
    for indent, statement in _import_statements(text):
        if len(parts := statement.split(None, 2)) < 2:
            continue
        word, source, *rest = parts
        if word == "import":
            found = set(_names(" ".join([source, *rest])))
        else:
            if not rest or not rest[0].startswith("import"):
                continue
            if source.startswith("."):  # relative: from the package up
                up = len(source) - len(source.lstrip("."))
                base = package.split(".")[: max(len(package.split(".")) - up + 1, 0)]
                source = ".".join(base + ([source.lstrip(".")] if source.lstrip(".") else []))
            names = [n for n in _names(rest[0][len("import"):]) if n != "*"]
            found = {f"{source}.{n}" for n in names if f"{source}.{n}" in files}
            if len(found) < len(names) or not names:  # names defined in ``source``: a package's, its module-level ones
                found.add(f"={source}" if files.get(source, path).name == "__init__.py" else source)
        every |= found
        top |= found if not indent else set()
    targets = {m.group(1) for m in _target(tops).finditer(text)  # registry entries (module-level data, or a function's)
               if text[m.start() - 1:m.start()] in ("'", '"') and not text.endswith("getLogger(", 0, m.start() - 1)}
    every |= targets
    top |= targets
    keep = {n for n in every | top if n.lstrip("=") in files and n.lstrip("=") != name}
    return every & keep, top & keep, _digest(data)


class _Tree:
    """The packages ``roots``' module files and, as they are read, each one's imports and digest."""

    def __init__(self, roots: dict[str, Path]):
        self.roots, self.files = roots, modules(roots)
        self.read: dict[str, tuple[set[str], set[str], str]] = {}

    def edges(self, name: str) -> tuple[set[str], set[str], str]:
        if name not in self.read:
            self.read[name] = _edges(name, self.files[name], self.files, tuple(self.roots))
        return self.read[name]

    def closure(self, module: str, ignored: tuple[str, ...] = ()) -> list[str]:
        seen: set[str] = set()
        todo = [module]
        while todo:
            node = todo.pop()
            name = node.lstrip("=")
            if node in seen or name in ignored or name not in self.files:
                continue
            seen.add(node)
            todo.extend(self.edges(name)[1 if node.startswith("=") else 0])
        names = {n.lstrip("=") for n in seen}
        parents = {".".join(n.split(".")[:i]) for n in names for i in range(1, n.count(".") + 1)}
        return sorted(n for n in names | parents if n in self.files)


def closure(module: str, roots: dict[str, Path], ignored: tuple[str, ...] = ()) -> list[Path]:
    """The files of the first-party modules ``module`` depends on, itself and the packages they sit in included
    (sorted); ``ignored``: modules not followed."""
    tree = _Tree(roots)
    return sorted(tree.files[n] for n in tree.closure(module, ignored))


_TREES: dict[tuple, _Tree] = {}  # read once per process


def _where(module) -> Path | None:
    """A top-level package's folder, a lone module's file (None: neither, e.g. made in memory)."""
    file, path = getattr(module, "__file__", None), list(getattr(module, "__path__", []))
    if path:  # a package; a namespace package has no __init__.py: its first portion is read
        where = Path(file).parent if file else Path(path[0])
        return where if where.is_dir() else None
    where = Path(file) if file else None  # a file in a zip or compiled only: none
    return where if where is not None and where.suffix == ".py" and where.is_file() else None


PRESET_KINDS = ("boards", "keypoints", "rigs", "skeletons")  # configs/<kind>/*.toml: data a stage may read


@cache
def _presets(kinds: tuple[str, ...]) -> tuple[str, ...]:
    """"configs/<kind>/<name>.toml <digest>" of the shipped presets of ``kinds`` (none without the folder)."""
    try:
        root = configs_dir()
    except FileNotFoundError:
        return ()
    return tuple(f"configs/{p.relative_to(root).as_posix()} {_digest(p.read_bytes())}"
                 for kind in kinds for p in sorted((root / kind).glob("*.toml")))


def _digest(data: bytes) -> str:
    return hashlib.sha256(data.replace(b"\r\n", b"\n")).hexdigest()  # the same for a checkout with CRLF line ends


@cache
def code_digest(module: str) -> str:
    """The digest of the code stage module ``module`` runs (:func:`closure`: the modules' names and contents) and
    of the presets shipped in ``configs/`` (the kinds its ``PRESETS`` names, else :data:`PRESET_KINDS`), once
    per process. First-party: ``mocap`` and the registered stages' packages. A stage module outside them (in a
    zip, compiled only, made in memory) counts by its own source where its loader has it."""
    from mocap import stages as registry

    tops = dict.fromkeys(["mocap", module.split(".")[0], *sorted(m.__name__.split(".")[0] for m in registry.stages())])
    roots = {t: where for t in tops if (where := _where(sys.modules.get(t))) is not None}
    if tuple(roots) not in _TREES:
        _TREES[tuple(roots)] = _Tree(roots)
    tree = _TREES[tuple(roots)]
    mod = sys.modules.get(module)
    h = hashlib.sha256()
    names = tree.closure(module, tuple(getattr(mod, "CODE_IGNORED", ())))
    for name in names:
        h.update(f"{name} {tree.edges(name)[2]}\n".encode())
    if module not in names:
        log.debug("stage module %s: not a file of %s; its digest holds its loader's source", module, list(roots))
        h.update(_source(mod).encode())
    for line in _presets(tuple(getattr(mod, "PRESETS", PRESET_KINDS))):
        h.update(f"{line}\n".encode())
    return h.hexdigest()[:16]


def _source(module) -> str:
    loader = getattr(module, "__loader__", None)
    try:
        return (loader.get_source(module.__name__) if loader is not None else None) or ""
    except (ImportError, OSError):
        return ""
