"""Locating and reading the preset files under ``configs/`` (data, not code).

The folder is found next to the package (a checkout or editable install) or at ``$MOCAP_CONFIGS``.
"""

from __future__ import annotations

import copy
import os
import threading
import tomllib
from pathlib import Path

# parsed files by path and content: a run reads the same presets many times (the target rig once per
# stage that names its outputs); each caller gets its own copy, so a table changed by one never leaks
_PARSED: dict[str, tuple[bytes, dict]] = {}
_PARSED_LOCK = threading.Lock()


def configs_dir() -> Path:
    env = os.environ.get("MOCAP_CONFIGS")
    path = Path(env) if env else Path(__file__).resolve().parents[1] / "configs"
    if not path.is_dir():
        raise FileNotFoundError(f"preset folder {path} not found (set MOCAP_CONFIGS to the project's configs/ folder)")
    return path


def preset_names(kind: str) -> list[str]:
    return sorted(p.stem for p in (configs_dir() / kind).glob("*.toml"))


def read_toml(path: Path) -> dict:
    """The table of a TOML file. Parsed once while the file's bytes stay the same (reading them is cheap,
    parsing is not); every call returns a fresh copy."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        key = os.path.abspath(path)
        with _PARSED_LOCK:
            hit = _PARSED.get(key)
        if hit is None or hit[0] != data:
            hit = (data, tomllib.loads(data.decode()))
            with _PARSED_LOCK:
                _PARSED[key] = hit
        return copy.deepcopy(hit[1])
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid TOML: {e}") from None
    except OSError as e:
        raise ValueError(f"{path}: cannot be read ({e.strerror or e})") from None


def preset_path(kind: str, name: str) -> Path:
    """The file of preset ``name`` (``configs/<kind>/<name>.toml``, or ``name`` itself when it is a TOML file)."""
    path = Path(name)
    if path.suffix != ".toml":
        path = configs_dir() / kind / f"{name}.toml"
    if not path.is_file():
        raise ValueError(f"unknown {kind} preset {name!r}: expected one of {preset_names(kind)} or a .toml file")
    return path


def load_preset(kind: str, name: str) -> tuple[dict, Path]:
    """Read ``configs/<kind>/<name>.toml`` (or a path to a TOML file) → (table, path)."""
    path = preset_path(kind, name)
    return read_toml(path), path


def check_keys(table: dict, allowed: set[str], where: str) -> None:
    """Raise naming the first key of ``table`` that is not in ``allowed``."""
    for key in table:
        if key not in allowed:
            raise ValueError(f"{where}: unknown key {key!r} (expected one of {sorted(allowed)})")
