"""``mocap run --dry-run``: which stages a run would redo and why, without running a stage or writing a file.

The same reasons as the run (:func:`mocap.pipeline_state.why_run`), stage by stage in order. A stage that is up
to date but reads what an earlier stage would redo may run too: whether it does depends on that stage's new
outputs, so it is said as such ("skip or run").
"""

from __future__ import annotations

from pathlib import Path

from mocap import stages as registry
from mocap.pipeline_state import _key, load_state, why_run
from mocap.session import Session
from mocap.settings import resolve as resolve_settings
from mocap.settings import sources


def plan(session: str | Path | Session, cfg=None, *, config_path: str | Path | None = None, sets: list[str] = (),
         from_stage: str | None = None) -> list[dict]:
    """Rows of ``{"stage", "would", "why"}`` for every stage, ``would``: run, skip, skip or run, not needed, or
    fail (an input missing that no earlier stage would make)."""
    s = session if isinstance(session, Session) else Session(Path(session))
    settings = cfg if cfg is not None else resolve_settings(sources(s.root, config_path, list(sets)))[0]
    names = registry.names()
    if from_stage is not None and from_stage not in names:
        raise ValueError(f"unknown stage {from_stage!r} (stages: {', '.join(names)})")
    first_forced = names.index(from_stage) if from_stage else len(names)
    state = load_state(s)
    rows: list[dict] = []
    changing: dict[Path, str] = {}  # outputs an earlier stage would (or may) rewrite → that stage
    for module in registry.stages():
        name = module.NAME
        needed = getattr(module, "needed", None)
        reason = needed(s, settings) if needed else None
        if reason:
            rows.append({"stage": name, "would": "not needed", "why": reason})
            continue
        inputs = [Path(p) for p in module.inputs(s, settings)]
        upstream = sorted({changing[p] for p in inputs if p in changing}, key=names.index)
        missing = [p for p in inputs if not p.exists()]
        if missing and not upstream:
            rows.append({"stage": name, "would": "fail", "why": f"input {missing[0]} is missing"})
            continue
        why = why_run(module, s, settings, inputs, _key(module, settings, inputs, s.root), state,
                      names.index(name) >= first_forced, save=False)
        if why is None and missing:
            why = f"{missing[0].name} is still to be made ({' and '.join(upstream)})"
        if why is None and not upstream:
            rows.append({"stage": name, "would": "skip", "why": "up to date"})
            continue
        verb = "changes" if len(upstream) == 1 else "change"
        row = {"stage": name, "would": "run", "why": why} if why is not None else \
            {"stage": name, "would": "skip or run", "why": f"if {' and '.join(upstream)} {verb} what it reads"}
        rows.append(row)
        changing.update({Path(p): name for p in module.outputs(s, settings)})
    return rows
