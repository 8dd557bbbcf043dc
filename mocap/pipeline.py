"""``mocap run``: every stage from videos to animation files, cached.

A stage runs when its inputs or its config changed since its last complete run (fingerprints in
``SESSION/.mocap/state.json``), when its outputs are missing, or from ``--from STAGE`` on; otherwise
it is skipped. Stages write their outputs atomically, so an interrupted run leaves no half-written
file; detection also resumes camera by camera. Each run logs to ``SESSION/logs/`` and saves the
resolved configuration as ``SESSION/config.resolved.toml``.

Configuration: defaults in the stages' typed ``Config`` classes ← ``configs/pipelines/<preset>.toml``
← ``SESSION/mocap.toml`` ← ``--config FILE`` ← ``--set stage.key=value``; unknown keys are errors
naming the key and the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path

from mocap.config import config_from_dict
from mocap.config_files import check_keys, load_preset, read_toml
from mocap.io.atomic import atomic_write_text
from mocap.report import Config as ReportConfig
from mocap.session import Session
from mocap.stages import detect, export, fit, refine, retarget, sync, triangulate

log = logging.getLogger(__name__)
STAGES = ("calibrate", "detect", "sync", "triangulate", "refine", "fit", "retarget", "export", "report")


@dataclass(frozen=True)
class PipelineConfig:
    calibrate: dict = field(default_factory=dict)  # checked by the calibration package
    detect: detect.Config = field(default_factory=detect.Config)
    sync: sync.Config = field(default_factory=sync.Config)
    triangulate: triangulate.Config = field(default_factory=triangulate.Config)
    refine: refine.Config = field(default_factory=refine.Config)
    fit: fit.Config = field(default_factory=fit.Config)
    retarget: retarget.Config = field(default_factory=retarget.Config)
    export: export.Config = field(default_factory=export.Config)
    report: ReportConfig = field(default_factory=ReportConfig)


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def parse_set(item: str) -> dict:
    """``stage.key=value`` (value in TOML syntax; bare words are strings) → nested dict."""
    if "=" not in item or "." not in item.split("=", 1)[0]:
        raise ValueError(f"--set {item!r}: expected stage.key=value, e.g. refine.accel_sigma=20")
    key, value = item.split("=", 1)
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    out: dict = {}
    node = out
    parts = key.strip().split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = parsed
    return out


def load_config(session: Session | None = None, path: str | Path | None = None, sets: list[str] = (),
                preset: str | None = None) -> tuple[PipelineConfig, dict]:
    """Resolve the configuration; returns it and the merged table (what was set, and where)."""
    names = {f.name for f in fields(PipelineConfig)}
    table: dict = {}
    sources = []
    if preset:
        t, p = load_preset("pipelines", preset)
        sources.append((t, str(p)))
    if session is not None and (session.root / "mocap.toml").is_file():
        sources.append((read_toml(session.root / "mocap.toml"), str(session.root / "mocap.toml")))
    if path is not None:
        sources.append((read_toml(Path(path)), str(path)))
    for item in sets:
        sources.append((parse_set(item), f"--set {item}"))
    for t, where in sources:
        check_keys(t, names, where)
        for stage, sub in t.items():
            if not isinstance(sub, dict):
                raise ValueError(f"{where}: [{stage}] must be a table")
            if stage != "calibrate":  # validate each source on its own so the error names its file
                config_from_dict(type(getattr(PipelineConfig(), stage)), sub, f"{where} [{stage}]")
        table = _merge(table, t)
    cfg = config_from_dict(PipelineConfig, table, "configuration")
    return cfg, table


# ----- stage wiring -------------------------------------------------------------------------------

def _plugin_calibrate():
    from importlib.metadata import entry_points

    for ep in entry_points(group="mocap.stages"):
        if ep.name == "calibrate":
            return ep.load()
    return None


def _rig_file(s: Session) -> Path | None:
    try:
        return s.rig_path()
    except FileNotFoundError:
        return None


def _pose2d(s: Session) -> list[Path]:
    return [s.pose2d_h5] if s.pose2d_h5.is_file() else ([s.pose2d_json] if s.pose2d_json.is_dir() else [])


def _videos(s: Session) -> list[Path]:
    from mocap.io.video import VIDEO_SUFFIXES

    d = s.root / "videos"
    return sorted(p for p in d.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES) if d.is_dir() else []


@dataclass(frozen=True)
class Stage:
    name: str
    inputs: Callable[[Session, PipelineConfig], list[Path]]
    outputs: Callable[[Session, PipelineConfig], list[Path]]
    run: Callable[[Session, PipelineConfig, bool], object]
    needed: Callable[[Session, PipelineConfig], str | None] = lambda s, c: None  # a reason to skip, or None
    resumable: bool = False


def _calibrate_needed(s: Session, c: PipelineConfig) -> str | None:
    rig = _rig_file(s)
    board = (s.calibration_dir / "board").exists()
    if rig is None and not board:
        raise FileNotFoundError(f"session {s.root}: missing calibration: put a rig file in {s.calibration_dir} "
                                f"(rig.toml, calibration.toml, Calib*.toml, *.qca.txt, intri.yml) or the board "
                                f"take in {s.calibration_dir / 'board'}/<camera>.mp4 to calibrate")
    if rig is None:
        return None
    ours = _load_state(s).get("calibrate", {}).get("status") in ("done", "started")
    if board and rig.name == "rig.toml" and ours:
        return None  # a rig this pipeline calibrated: redone when the board take or the settings change
    return f"rig given ({rig.name})"  # never overwrite a rig the user brought


def _run_calibrate(s: Session, c: PipelineConfig, overwrite: bool):
    plugin = _plugin_calibrate()
    if plugin is None:
        raise RuntimeError("calibrating needs the calibration package (pip install the mocap project)")
    return plugin(s.root, c.calibrate, overwrite)


def _detect_needed(s: Session, c: PipelineConfig) -> str | None:
    if _videos(s):
        return None
    if _pose2d(s):
        return "2D keypoints given"
    raise FileNotFoundError(f"session {s.root}: no camera videos in {s.root / 'videos'} and no 2D keypoints "
                            f"({s.pose2d_h5.name} or {s.pose2d_json.name}/)")


def _export_cfg(c: PipelineConfig) -> export.Config:
    from mocap.retarget import load_target_rig

    motions = c.export.motions or ("body22", load_target_rig(c.retarget.target).name)
    return replace(c.export, motions=motions)


def _stages() -> list[Stage]:
    rig = lambda s, c: [p for p in [_rig_file(s)] if p]  # noqa: E731
    synced = lambda s: [s.root / "sync.json"] if (s.root / "sync.json").exists() else []  # noqa: E731
    return [
        Stage("calibrate", lambda s, c: sorted((s.calibration_dir / "board").glob("*"))
              + [p for p in [s.calibration_dir / "board.toml"] if p.exists()],
              lambda s, c: [s.calibration_dir / "rig.toml"], _run_calibrate, _calibrate_needed),
        Stage("detect", lambda s, c: _videos(s) + rig(s, c), lambda s, c: [s.pose2d_h5],
              lambda s, c, o: detect.main(s, c.detect, o), _detect_needed, resumable=True),
        Stage("sync", lambda s, c: _pose2d(s) + rig(s, c), lambda s, c: [s.root / "sync.json"],
              lambda s, c, o: sync.main(s, c.sync, o)),
        Stage("triangulate", lambda s, c: _pose2d(s) + rig(s, c) + synced(s),
              lambda s, c: [s.points3d("triangulated")], lambda s, c, o: triangulate.main(s, c.triangulate, o)),
        Stage("refine", lambda s, c: _pose2d(s) + rig(s, c) + synced(s) + [s.points3d("triangulated")],
              lambda s, c: [s.points3d("refined")], lambda s, c, o: refine.main(s, c.refine, o)),
        Stage("fit", lambda s, c: [s.points3d(c.fit.source)] + rig(s, c),
              lambda s, c: [s.motion(Path(c.fit.solver.skeleton).stem)], lambda s, c, o: fit.main(s, c.fit, o)),
        Stage("retarget", lambda s, c: [s.motion(c.retarget.source)],
              lambda s, c: [s.motion(c.retarget.target)], lambda s, c, o: retarget.main(s, c.retarget, o)),
        Stage("export", lambda s, c: [s.motion(m) for m in _export_cfg(c).motions],
              lambda s, c: export.outputs(s, _export_cfg(c)), lambda s, c, o: export.main(s, _export_cfg(c), o)),
    ]


def _fingerprint(paths: list[Path], root: Path) -> list:
    out = []
    for p in paths:
        files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
        for q in files:
            st = q.stat() if q.exists() else None
            rel = str(q.relative_to(root)) if q.is_relative_to(root) else str(q)
            out.append([rel, st.st_size if st else None, st.st_mtime_ns if st else None])
    return out


def _key(stage: str, cfg: PipelineConfig, inputs: list[Path], root: Path) -> str:
    from mocap import __version__

    sub = getattr(cfg, stage) if stage != "export" else _export_cfg(cfg)
    blob = json.dumps({"version": __version__, "config": sub if isinstance(sub, dict) else asdict(sub),
                       "inputs": _fingerprint(inputs, root)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _report_stage() -> Stage:
    from mocap import report

    def inputs(s: Session, c: PipelineConfig) -> list[Path]:
        return [p for st in _stages() for p in st.outputs(s, c) if p.exists() and st.name != "export"] + \
            [p for p in [s.groundtruth_dir] if p.exists()]

    return Stage("report", inputs, lambda s, c: report.outputs(s, c.report), lambda s, c, o: None)


@dataclass
class RunResult:
    session: Path
    status: dict[str, str] = field(default_factory=dict)  # ran | skipped | not needed (reason)
    timings: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, list[str]] = field(default_factory=dict)
    metrics: dict | None = None
    log_file: Path | None = None

    @property
    def ran(self) -> list[str]:
        return [k for k, v in self.status.items() if v == "ran"]


def _state_path(s: Session) -> Path:
    return s.root / ".mocap" / "state.json"


def _load_state(s: Session) -> dict:
    p = _state_path(s)
    if not p.is_file():
        return {}
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError:
        log.warning("%s is unreadable; every stage will run", p)
        return {}


def _save_resolved(s: Session, cfg: PipelineConfig) -> None:
    import tomli_w

    def clean(x):
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items() if v is not None}
        if isinstance(x, tuple | list):
            return [clean(v) for v in x]
        return x

    atomic_write_text(s.root / "config.resolved.toml", tomli_w.dumps(clean(asdict(cfg))))


def run(session: str | Path | Session, cfg: PipelineConfig | None = None, *, config_path: str | Path | None = None,
        sets: list[str] = (), from_stage: str | None = None, progress: bool = True) -> RunResult:
    """Run (or skip) every stage of a session. Python equivalent of ``mocap run``."""
    s = session if isinstance(session, Session) else Session(Path(session))
    if cfg is None:
        cfg, _ = load_config(s, config_path, list(sets))
    if from_stage is not None and from_stage not in STAGES:
        raise ValueError(f"--from: unknown stage {from_stage!r} (stages: {', '.join(STAGES)})")
    first_forced = STAGES.index(from_stage) if from_stage else len(STAGES)
    result = RunResult(s.root)
    handler = _log_to_file(s)
    result.log_file = Path(handler.baseFilename)
    state = _load_state(s)
    from tqdm import tqdm

    stages = _stages() + [_report_stage()]
    bar = tqdm(stages, desc="pipeline", unit="stage", disable=None if progress else True)
    try:
        _save_resolved(s, cfg)
        for stage in bar:
            bar.set_postfix_str(stage.name)
            reason = stage.needed(s, cfg)
            if reason:
                result.status[stage.name] = f"not needed ({reason})"
                result.timings[stage.name] = 0.0
                continue
            key = _key(stage.name, cfg, stage.inputs(s, cfg), s.root)
            outs = stage.outputs(s, cfg)
            prev = state.get(stage.name, {})
            forced = STAGES.index(stage.name) >= first_forced
            if not forced and prev.get("key") == key and prev.get("status") == "done" and all(p.exists() for p in outs):
                result.status[stage.name] = "skipped"
                result.timings[stage.name] = 0.0
                result.outputs[stage.name] = [str(p) for p in outs]
                continue
            resume = stage.resumable and not forced and prev.get("key") == key and prev.get("status") == "started"
            state[stage.name] = {"key": key, "status": "started"}
            atomic_write_text(_state_path(s), json.dumps(state, indent=1))
            log.info("stage %s: %s", stage.name, "resuming" if resume else "running")
            t0 = time.perf_counter()
            if stage.name == "report":
                from mocap import report

                # each stage's time from its last real run (this run's for the stages that ran)
                last = {k: (result.timings.get(k) if result.status.get(k) == "ran" else state.get(k, {}).get("seconds",
                            0.0)) for k in result.status}
                result.metrics = report.build(s, last, cfg=cfg.report)
            else:
                stage.run(s, cfg, not resume)
            dt = time.perf_counter() - t0
            result.status[stage.name], result.timings[stage.name] = "ran", dt
            result.outputs[stage.name] = [str(p) for p in stage.outputs(s, cfg)]
            state[stage.name] = {"key": key, "status": "done", "seconds": dt, "finished": datetime.now().isoformat()}
            atomic_write_text(_state_path(s), json.dumps(state, indent=1))
            log.info("stage %s done in %.2f s", stage.name, dt)
    except KeyboardInterrupt:
        log.warning("interrupted; nothing half-written is left behind: run the same command again to resume")
        raise
    finally:
        bar.close()
        logging.getLogger("mocap").removeHandler(handler)
        logging.getLogger("calibration").removeHandler(handler)
        handler.close()
    return result


def _log_to_file(s: Session) -> logging.FileHandler:
    logs = s.root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    h = logging.FileHandler(logs / f"run-{datetime.now():%Y%m%d-%H%M%S}.log")
    h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    h.setLevel(logging.INFO)
    for name in ("mocap", "calibration"):
        lg = logging.getLogger(name)
        lg.addHandler(h)
        if lg.getEffectiveLevel() > logging.INFO:
            lg.setLevel(logging.INFO)
    return h
