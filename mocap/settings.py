"""The settings of a session: one table per stage, one dialect for files, ``--set`` and flags.

Resolved from, lowest first: the defaults (each stage's typed ``Config``) ← ``SESSION/mocap.toml`` ← settings
kept from earlier commands on this session (``SESSION/.mocap/settings.json``: every ``--set`` and every flag of
``mocap run`` and the stage commands is kept, so ``mocap detect --persons 2`` then ``mocap run`` still detects
two people) ← ``--config FILE`` ← ``--set stage.key=value`` and flags of this command. Unknown keys and wrong
types are errors naming the key and the file; ``mocap config show`` prints every key with its default, its
value and where the value came from.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shlex
import tomllib
from pathlib import Path

from mocap import stages as stage_registry
from mocap.config import config_from_dict, config_to_dict
from mocap.config import keys as config_keys
from mocap.config_files import check_keys, read_toml
from mocap.io.atomic import atomic_write_text

log = logging.getLogger(__name__)


def _settings_class() -> type:
    mods = stage_registry.stages()
    cls = dataclasses.make_dataclass(
        "Settings", [(m.NAME, m.Config, dataclasses.field(default_factory=m.Config)) for m in mods], frozen=True)
    cls.__module__ = __name__
    return cls


Settings = _settings_class()
Settings.__doc__ = "Every stage's Config, one attribute per stage (``settings.refine.accel_sigma``)."


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _flatten(table: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for k, v in table.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def nest(key: str, value) -> dict:
    out: dict = {}
    node = out
    parts = key.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return out


def parse_set(item: str) -> dict:
    """``stage.key=value`` (value in TOML syntax: numbers, true/false, ``['bvh', 'glb']``; bare words are
    strings) → nested dict."""
    if "=" not in item or "." not in item.split("=", 1)[0]:
        raise ValueError(f"--set {item!r}: expected stage.key=value, e.g. refine.accel_sigma=20")
    key, value = item.split("=", 1)
    return nest(key.strip(), _value(value))


def _value(text: str):
    """A TOML value, else a bare word (a string), else a list written ``[a, b]`` whose strings lost their quotes
    to the shell (``--set export.formats=['bvh','glb']`` unquoted reaches here as ``[bvh,glb]``)."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        inner = text.strip()
        if inner.startswith("[") and inner.endswith("]"):
            return [_value(v.strip()) for v in inner[1:-1].split(",") if v.strip()]
        return text


def _check_table(table: dict, where: str) -> None:
    """Each source on its own, so that an error names its file."""
    check_keys(table, set(stage_registry.names()), where)
    for stage, sub in table.items():
        if not isinstance(sub, dict):
            raise ValueError(f"{where}: [{stage}] must be a table")
        config_from_dict(stage_registry.get(stage).Config, sub, f"{where} [{stage}]")


def kept_path(root: Path) -> Path:
    return Path(root) / ".mocap" / "settings.json"


def read_kept(root: Path) -> dict[str, dict]:
    """``{"detect.persons": {"value": 2, "from": "mocap detect --persons 2"}}``."""
    path = kept_path(root)
    if not path.is_file():
        return {}
    try:
        kept = json.loads(path.read_text())
        if not isinstance(kept, dict) or not all(isinstance(v, dict) and "value" in v for v in kept.values()):
            raise ValueError("not a table of settings")
    except (json.JSONDecodeError, ValueError) as e:
        raise ValueError(f"{path}: unreadable ({e}); delete it to forget the settings kept from earlier "
                         "commands") from None
    return kept


NOT_KEPT = ("calibrate.intrinsics_only",)  # one-off modes: kept, every later run calibrated intrinsics only


def keep(root: Path, items: list[tuple[str, str]]) -> None:
    """Remember ``(stage.key=value, origin)`` for later commands on this session."""
    if not items:
        return
    kept = read_kept(root)
    for item, origin in items:
        for key, value in _flatten(parse_set(item)).items():
            if key not in NOT_KEPT:
                kept[key] = {"value": _absolute(value), "from": origin}
    atomic_write_text(kept_path(root), json.dumps(kept, indent=1, sort_keys=True))


def kept_not_given(root: Path, sets: list[str]) -> dict[str, dict]:
    """The settings kept from earlier commands (:func:`read_kept`) that ``sets`` (``stage.key=value``) do not give."""
    given = {k for item in sets for k in _flatten(parse_set(item))}
    return {k: v for k, v in read_kept(root).items() if k not in given}


def _absolute(value):
    """A relative path to a file that exists here (``configs/rigs/mixamo.toml``, a model file) as an absolute one:
    kept as given, it was read against the working directory of each later command (`retarget: input ... is
    missing` from another folder). Names (``mixamo``) and other values are kept as they are."""
    path = Path(value) if isinstance(value, str) else None
    if path is not None and not path.is_absolute() and (len(path.parts) > 1 or path.suffix) and path.is_file():
        return str(path.resolve())
    return value


def forget(root: Path, keys: list[str]) -> list[str]:
    """Drop kept settings (``detect.persons``, or ``detect`` for a whole stage); returns what was dropped. A key
    no stage has is an error naming it (a typo would else forget nothing, silently)."""
    for q in keys:
        stage, _, key = q.partition(".")
        if stage not in stage_registry.names():
            raise ValueError(f"config forget {q!r}: no stage {stage!r} (stages: {', '.join(stage_registry.names())})")
        known = config_keys(stage_registry.get(stage).Config)
        if key and key.split(".")[0] not in known:
            raise ValueError(f"config forget {q!r}: [{stage}] has no key {key!r} (keys: {', '.join(known)})")
    kept = read_kept(root)
    gone = [k for k in kept if any(k == q or k.startswith(q + ".") for q in keys)]
    for k in gone:
        del kept[k]
    atomic_write_text(kept_path(root), json.dumps(kept, indent=1, sort_keys=True))
    return gone


def sources(root: Path | None, path: str | Path | None = None, sets: list[str] = (),
            use_kept: bool = True) -> list[tuple[dict, str]]:
    """(table, where) from the lowest precedence to the highest."""
    out = []
    if root is not None and (Path(root) / "mocap.toml").is_file():
        out.append((read_toml(Path(root) / "mocap.toml"), str(Path(root) / "mocap.toml")))
    if root is not None and use_kept:  # a kept value this command gives again is not read: a bad one (kept before
        # its check existed, or by an older version) would else refuse the very command that replaces it
        for key, entry in kept_not_given(root, list(sets)).items():
            out.append((nest(key, entry["value"]), f"{kept_path(root)} (from {entry.get('from', '?')})"))
    if path is not None:
        if not Path(path).is_file():
            raise FileNotFoundError(f"--config {path}: no such file")
        out.append((read_toml(Path(path)), str(path)))
    for item in sets:
        out.append((parse_set(item), f"--set {item}"))
    return out


def resolve(srcs: list[tuple[dict, str]]) -> tuple[object, dict[str, str]]:
    """(Settings, {dotted key: where its value came from})."""
    table: dict = {}
    origin: dict[str, str] = {}
    for t, where in srcs:
        try:
            _check_table(t, where)
        except ValueError as e:  # a value kept by an earlier command: say how to drop it
            kept = f"{Path('.mocap') / 'settings.json'} (from "
            if kept not in where or len(keys := list(_flatten(t))) != 1:
                raise
            root = where[:where.index(kept)].rstrip("/\\") or "."
            raise ValueError(f"{e}; `mocap config forget {shlex.quote(root)} {keys[0]}` drops it") from None
        table = _merge(table, t)
        origin.update({k: where for k in _flatten(t)})
    return config_from_dict(Settings, table, "configuration"), origin


def load_config(session=None, path: str | Path | None = None, sets: list[str] = (), use_kept: bool = True):
    """Resolve the configuration of a session (a Session or its folder); returns the Settings and the merged
    table."""
    root = session if session is None or isinstance(session, (str, Path)) else session.root  # Path.root is "/"
    srcs = sources(root, path, list(sets), use_kept)
    cfg, _ = resolve(srcs)
    table: dict = {}
    for t, _ in srcs:
        table = _merge(table, t)
    return cfg, table


def replace_stage(settings, cfg) -> object:
    """The settings with one stage's Config replaced (``cfg`` is that stage's Config)."""
    for m in stage_registry.stages():
        if isinstance(cfg, m.Config):
            return dataclasses.replace(settings, **{m.NAME: cfg})
    raise TypeError(f"{type(cfg).__qualname__} is no stage's Config")


def as_settings(cfg=None) -> object:
    """Settings from None (the defaults), a stage's Config (the defaults with that stage's), or Settings."""
    if cfg is None:
        return Settings()
    if isinstance(cfg, Settings):
        return cfg
    return replace_stage(Settings(), cfg)


def show(settings, origin: dict[str, str]) -> list[dict]:
    """Rows of ``mocap config show``: key, default, value, source."""
    default = _flatten(config_to_dict(Settings(), keep_none=True))
    current = _flatten(config_to_dict(settings, keep_none=True))
    rows = []
    for key in sorted(set(default) | set(current), key=lambda k: (stage_registry.names().index(k.split(".")[0]), k)):
        src = next((w for k, w in origin.items() if key == k or key.startswith(k + ".")), "default")
        rows.append({"key": key, "default": default.get(key), "value": current.get(key), "source": src})
    return rows


def to_toml(settings) -> str:
    import tomli_w

    return tomli_w.dumps(config_to_dict(settings))
