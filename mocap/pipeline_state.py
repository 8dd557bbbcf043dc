"""The runner's cache: a stage's key (its settings, derived values and input fingerprints) and
``SESSION/.mocap/state.json``, where the key of each stage's last complete run is kept (:mod:`mocap.pipeline`)."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from mocap.config import config_to_dict
from mocap.io.atomic import atomic_write_text
from mocap.session import Session
from mocap.stage_code import code_digest

log = logging.getLogger("mocap.pipeline")


CONFIRMED = 8  # full keys a stage keyed without MAYBE_UNUSED is remembered to stand under (the last ones)
SMALL = 1 << 20  # files up to this size are fingerprinted by their whole content, in one read; larger ones (not
# videos) too, read in blocks, once per process while their size and time stay (_whole)
_digests: dict[tuple[str, int, int], str] = {}


def _fingerprint(paths: list[Path], root: Path) -> list:
    from mocap.io.video import VIDEO_SUFFIXES, fingerprint  # not at import: OpenCV's is not needed before a stage

    out = []
    for p in paths:
        files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
        for q in files:
            rel = str(q.relative_to(root)) if q.is_relative_to(root) else str(q)
            if not q.is_file():
                out.append([rel, None])
                continue
            st = q.stat()
            video = q.suffix.lower() in VIDEO_SUFFIXES
            out.append([rel, hashlib.sha256(q.read_bytes()).hexdigest()[:16] if st.st_size <= SMALL
                        else fingerprint(q, st.st_size) if video else _whole(q, st)])
    return out


def _whole(path: Path, st, block: int = 1 << 20) -> str:
    """A large file's digest, read in blocks, not its time: a session copied with ``cp -r`` (new times) re-ran
    every stage whose input or output was a file over 1 MB (a real take's pose2d.h5: its detection, minutes).
    The project rewrites its HDF5 outputs in place at one size, so they are read whole (~0.4 GB/s), not sampled;
    once per process while the file's size and time stay (a run asks for pose2d.h5's four or more times)."""
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _digests:
        h = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(block):
                h.update(chunk)
        _digests[key] = h.hexdigest()[:16]
    return _digests[key]


def _key(module, settings, inputs: list[Path], root: Path, drop: tuple[str, ...] = ()) -> str:
    """The stage's cache key: its settings, the files it reads and the code it runs (:mod:`mocap.stage_code`);
    ``drop``: resolved values its finished outputs turned out not to depend on (a
    stage's ``MAYBE_UNUSED`` and ``unused(session, settings, again=False)``; ``again``: asked before a skip under
    other settings, whether the outputs still would not depend on them)."""
    config = config_to_dict(getattr(settings, module.NAME), True)
    for k in getattr(module, "NOT_IN_KEY", ()):  # settings the outputs never depend on (a thread count)
        config.pop(k, None)
    payload = {"code": code_digest(module.__name__),  # not the package's version: a release re-runs what changed
               "config": config, "inputs": _fingerprint(inputs, root)}
    if getattr(module, "NAMED_BY_SESSION", False):  # its outputs carry the session folder's name (a page's title)
        payload["session"] = Path(root).resolve().name
    derived = getattr(module, "resolved", None)
    values = {k: v for k, v in (derived(settings) if derived is not None else {}).items() if k not in drop}
    if values:  # only when some value is derived: keys stay
        payload["resolved"] = values
    blob = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _state_path(s: Session) -> Path:
    return s.root / ".mocap" / "state.json"


def load_state(s: Session) -> dict:
    p = _state_path(s)
    if not p.is_file():
        return {}
    try:
        state = json.loads(p.read_text())
        return state if isinstance(state, dict) else {}
    except json.JSONDecodeError:
        log.warning("%s is unreadable; every stage will run", p)
        return {}


def _save_state(s: Session, state: dict) -> None:
    atomic_write_text(_state_path(s), json.dumps(state, indent=1))


def why_run(module, s: Session, settings, inputs: list[Path], key: str, state: dict, forced: bool,
            save: bool = True) -> str | None:
    """Why the stage runs (None: its outputs stand). It is skipped only when its outputs are still the ones it
    wrote (not remade by hand, or by Python code that went around the runner, under other settings), by the same
    code (:mod:`mocap.stage_code`) under the same key. ``save``: a confirmation may be remembered in the state
    file (False: a dry run, nothing written)."""
    prev = state.get(module.NAME, {})
    outs = module.outputs(s, settings)
    return "asked for (--from, --overwrite)" if forced else "no earlier run" if not prev \
        else "its last run did not finish" if prev.get("status") != "done" \
        else "its settings changed (it writes other outputs)" if _other_outputs(module, settings, prev, outs, s.root) \
        else "an output is missing" if not all(p.exists() for p in outs) \
        else "its outputs changed since it wrote them" if prev.get("outputs") != _fingerprint(outs, s.root) \
        else "its code changed (mocap was updated)" if prev.get("code") != code_digest(module.__name__) \
        else None if _same(module, s, settings, inputs, key, state, save) else "its inputs or settings changed"


def settings_digest(module, settings) -> str:
    """A digest of the stage's own settings (as in its key: without ``NOT_IN_KEY``), kept with its last run: other
    outputs under other settings are a settings change (its outputs can differ with its inputs too: the people
    fitted, a refined rig kept or not)."""
    config = config_to_dict(getattr(settings, module.NAME), True)
    for k in getattr(module, "NOT_IN_KEY", ()):
        config.pop(k, None)
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _other_outputs(module, settings, prev: dict, outs: list[Path], root: Path) -> bool:
    """Whether the stage's own settings changed since its last run and ask for other output files than that run
    wrote (export formats): an output then is "missing", or the outputs "changed since it wrote them", which read
    as a file deleted or edited by hand. Files only: a folder's contents are the stage's own."""
    if prev.get("settings") in (None, settings_digest(module, settings)) or any(p.is_dir() for p in outs) \
            or not isinstance(prev.get("outputs"), list):
        return False
    wrote = {rel for rel, _ in prev["outputs"]}
    return wrote != {str(p.relative_to(root)) if p.is_relative_to(root) else str(p) for p in outs}


def _same(module, s: Session, settings, inputs: list[Path], key: str, state: dict, save: bool = True) -> bool:
    """Whether the stage's finished outputs stand under ``settings`` (full key ``key``): the key they were made
    under, or a key without its ``MAYBE_UNUSED`` values while the stage confirms, under these settings, that its
    outputs still do not depend on them (``unused(..., again=True)``, once per full key: remembered in ``state``)."""
    maybe = tuple(getattr(module, "MAYBE_UNUSED", ()))
    prev = state.get(module.NAME, {})
    if prev.get("key") == key or key in prev.get("confirmed", ()):
        return True
    if not maybe or prev.get("key") != _key(module, settings, inputs, s.root, maybe) \
            or not set(maybe) <= set(module.unused(s, settings, True)):
        return False
    if save:
        prev["confirmed"] = [*prev.get("confirmed", ())[-(CONFIRMED - 1):], key]
        _save_state(s, state)
    return True
