"""The commands made from the stage modules: ``mocap STAGE SESSION``, ``mocap run`` and ``mocap config``.

Every stage command and ``mocap run`` read the settings through one loader (:mod:`mocap.settings`):
``--config FILE``, ``--set stage.key=value`` and the stage's flags, each flag being one documented key
(``mocap detect --persons 2`` is ``--set detect.persons=2``). What a command sets is kept for the later
commands on the session, and a stage command goes through the same cached runner as ``mocap run``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mocap import stages as registry

SET_HELP = ("override one setting, e.g. refine.accel_sigma=20 or export.formats=['bvh','glb'] (TOML values; "
            "bare words are strings; repeatable). Kept for later commands on this session")


def toml_value(value) -> str:
    """A value as one line of TOML (``--set`` syntax): lists stay on one line."""
    import tomli_w

    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return tomli_w.dumps({"v": value}).split("=", 1)[1].strip()


def _flag_sets(module, args) -> list[str]:
    out = []
    for f in getattr(module, "FLAGS", ()):
        v = getattr(args, _dest(f))
        if v is not None:
            out.append(f"{module.NAME}.{f.key}={toml_value(v)}")
    return out


def _dest(flag) -> str:
    return "flag_" + flag.flag.lstrip("-").replace("-", "_")


def _settings_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="TOML file with one table per stage ([refine] accel_sigma = 20)")
    p.add_argument("--set", action="append", default=[], metavar="STAGE.KEY=VALUE", help=SET_HELP)


def add_stage_commands(sub: argparse._SubParsersAction) -> None:
    for module in registry.stages():
        p = sub.add_parser(module.NAME, help=getattr(module, "HELP", ""),
                           description=f"{getattr(module, 'HELP', '')}. Each flag sets one key of "
                                       f"[{module.NAME}] (mocap config show SESSION lists them all).")
        p.add_argument("session", type=Path, help="session folder (see README: session layout)")
        p.add_argument("--overwrite", action="store_true", help="redo the stage even if it is up to date")
        _settings_args(p)
        for f in getattr(module, "FLAGS", ()):
            text = f"{f.help} (= --set {module.NAME}.{f.key}=…)" if f.type else \
                f"{f.help} (= --set {module.NAME}.{f.key}={toml_value(f.value)})"
            kw = {"dest": _dest(f), "help": text, **f.kwargs}
            if f.type is not None:
                kw.setdefault("metavar", f.key.upper())
            if f.type is None:
                p.add_argument(f.flag, *f.aliases, action="store_const", const=f.value, default=None, **kw)
            else:
                p.add_argument(f.flag, *f.aliases, type=f.type, default=None, choices=f.choices or None, **kw)
        p.set_defaults(func=cmd_stage, stage=module.NAME)

    rn = sub.add_parser("run", help="the whole pipeline, cached (see README: mocap run)",
                        description="Run every stage that is out of date: " + " → ".join(registry.names()),
                        epilog="Settable keys, their defaults and current values: mocap config show SESSION.")
    rn.add_argument("session", type=Path)
    _settings_args(rn)
    rn.add_argument("--from", dest="from_stage", metavar="STAGE", choices=registry.names(),
                    help="redo this stage and every later one: " + ", ".join(registry.names()))
    rn.add_argument("--no-videos", action="store_true",
                    help="no review videos nor video crops in the report (key: report.overlay_videos=false)")
    rn.add_argument("--strict", action="store_true",
                    help="exit with status 3 when the report's verdict is FAIL (for scripts; 0 otherwise)")
    rn.add_argument("--dry-run", action="store_true",
                    help="only say which stages would run and why (after updating mocap: is detection redone?)")
    from mocap.cli.scale import add_scheduler_args

    add_scheduler_args(rn)
    rn.set_defaults(func=cmd_run)

    cf = sub.add_parser("config", help="show the settings of a session (every key, default, value, source)")
    csub = cf.add_subparsers(dest="what", metavar="WHAT", required=True)
    sh = csub.add_parser("show", help="every key with its default, its value and where the value comes from")
    sh.add_argument("session", type=Path, nargs="?", help="session folder (default: only the defaults)")
    _settings_args(sh)
    sh.set_defaults(func=cmd_config_show)
    un = csub.add_parser("forget", help="drop settings kept from earlier commands (a key, or a stage)")
    un.add_argument("session", type=Path)
    un.add_argument("keys", nargs="+", metavar="KEY", help="e.g. detect.persons, or detect for the whole stage")
    un.set_defaults(func=cmd_config_forget)


def cmd_stage(args) -> int:
    from mocap.pipeline import run

    module = registry.get(args.stage)
    sets = _flag_sets(module, args) + list(args.set)
    r = run(args.session, config_path=args.config, sets=sets, only=[module.NAME], force=args.overwrite,
            command=args.command_line)
    status = r.status.get(module.NAME, "")
    if status == "skipped":
        status = "up to date (nothing changed since its last run; --overwrite redoes it)" \
            + _stale_upstream(args, module.NAME, sets)
    print(f"{module.NAME}: {status}" + (f" in {r.timings[module.NAME]:.2f} s" if status == "ran" else ""))
    summary = getattr(module, "summary", None)
    if summary is not None:
        from mocap.session import Session
        from mocap.settings import load_config

        s = Session(args.session)
        for line in summary(s, load_config(s, args.config)[0]):
            print(line)
    for path in r.outputs.get(module.NAME, []):
        print(f"  {path}")
    return 0


def _stale_upstream(args, name: str, sets: list[str]) -> str:
    """For a stage command that found its stage up to date: the earlier stages a ``mocap run`` would redo (their
    inputs, settings or code changed: a video replaced, mocap updated), which this command does not look at (it
    said "up to date" while detection was out of date); "" when none."""
    from mocap.pipeline_plan import plan

    before = registry.names()[:registry.names().index(name)]
    if not before:
        return ""
    try:
        rows = plan(args.session, config_path=args.config, sets=sets)
    except (OSError, ValueError):  # the plan is a hint: the stage's own answer stands
        return ""
    stale = [f"{r['stage']} ({r['why']})" for r in rows if r["stage"] in before and r["would"] == "run"]
    if not stale:
        return ""
    return (f"; but {'earlier stages are' if len(stale) > 1 else 'an earlier stage is'} out of date: "
            f"{', '.join(stale)}: `mocap run {args.session}` redoes {'them' if len(stale) > 1 else 'it'} and this")


def stage_flag_hint(args, extra: list[str]) -> str:
    """For ``mocap run`` (or ``batch``) given a stage command's flag (``--persons 2``): whose it is (every stage
    whose command has it), and its ``--set`` form."""
    if getattr(args, "command", None) not in ("run", "batch"):
        return ""
    flags: dict[str, list] = {}
    for m in registry.stages():
        for f in getattr(m, "FLAGS", ()):
            for name in (f.flag, *f.aliases):
                flags.setdefault(name, []).append((m.NAME, f))
    for k, token in enumerate(extra):
        name, _, inline = token.partition("=")
        if name not in flags:
            continue
        owners = flags[name]
        takes = owners[0][1].type is not None
        value = inline or (extra[k + 1] if takes and k + 1 < len(extra) and not extra[k + 1].startswith("-") else
                           "VALUE" if takes else str(owners[0][1].value).lower())
        commands = " and ".join(f"mocap {st} SESSION {name}{' ' + value if takes else ''}" for st, _ in owners)
        sets = " or ".join(f"--set {st}.{f.key}={value}" for st, f in owners)
        return f"; {name} is a stage command's flag ({commands}); with mocap {args.command}: {sets}"
    return ""


def refined_line(cal: dict) -> str:
    """The run summary's line on the rig refined from the performer (``metrics["calibration_refinement"]``): the
    camera turned most and the one moved most, each named (one maximum of each, side by side, read as one camera)."""
    deg, mm, err = cal.get("moves_deg") or {}, cal.get("moves_mm") or {}, cal.get("error_px") or {}
    turned, shifted = (max(d, key=d.get) if d else None for d in (deg, mm))
    if turned is None:
        most = "0° / 0 mm"
    elif shifted in (None, turned):
        most = f"{turned} {deg[turned]:.2f}° / {mm.get(turned, 0):.0f} mm"
    else:
        most = f"{turned} {deg[turned]:.2f}°, {shifted} {mm[shifted]:.0f} mm"
    who = "the people" if (cal.get("persons") or 1) > 1 else "the performer"  # several: from all of them
    return (f"cameras refined from {who}: moved up to {most} (held-out error "
            f"{err.get('heldout_given', float('nan')):.2f} → {err.get('heldout_refined', float('nan')):.2f} px); the "
            "given rig is unchanged, the refined one is calibration/refined/rig.toml")


def cmd_run(args) -> int:
    from mocap.bench.common import format_table
    from mocap.cli.scale import scheduler_from_args
    from mocap.pipeline import run

    sets = [*args.set, *(["report.overlay_videos=false"] if getattr(args, "no_videos", False) else [])]
    if getattr(args, "dry_run", False):
        from mocap.pipeline_plan import plan

        rows = plan(args.session, config_path=args.config, sets=sets, from_stage=args.from_stage)
        print(format_table(rows, [("stage", "stage", "s"), ("would", "would", "s"), ("why", "why", "s")]))
        print("dry run: nothing ran, nothing was written")
        return 0
    with scheduler_from_args(args):
        r = run(args.session, config_path=args.config, sets=sets, from_stage=args.from_stage,
                command=args.command_line)
    rows = [{"stage": k, "status": v, "s": r.timings.get(k, 0.0), "why": r.why.get(k, "")} for k, v in r.status.items()]
    print(format_table(rows, [("stage", "stage", "s"), ("status", "status", "s"), ("s", "seconds", ".2f"),
                              ("why", "why it ran", "s")]))
    print(f"total {sum(r.timings.values()):.2f} s; log {r.log_file}")
    for line in kept_lines(args.session, sets):
        print(line)
    from mocap.stages.export import unit_note

    for stage in ("export", "report"):
        for path in r.outputs.get(stage, []):
            print(f"{stage}: {path}{unit_note(r.settings, path) if stage == 'export' else ''}")
    m = r.metrics
    if m:
        from mocap.report.calibration_html import focal_notes
        from mocap.report.calibration_html import frames as move_frames
        from mocap.report.cameras import flag_text
        from mocap.report.metrics import ONE_VIEW_RUN_S
        from mocap.report.steps import stat_label

        people = m.get("persons") if isinstance(m.get("persons"), list) and len(m["persons"]) > 1 else [m]
        for pm in people:  # one line per person (its own cameras, flags and hints) when there are several
            who = f"{pm['name']} ({pm['frames_present']} of {pm['frames']} frames): " if pm is not m else ""
            if who and not pm["frames_present"]:  # no 3D: nothing to measure
                print(no_points_line(who, pm["name"], m))
                continue
            rec = pm["reconstructed"]  # one performer entering late or leaving early: judged from first to last seen
            seen = f"seen in frames {rec['first_frame']}–{rec['last_frame']} of {pm['frames']}, " \
                if rec.get("frames_outside") and not who else ""
            rp, mm = pm["reprojection_px"], pm.get("reprojection_mm", {}).get("median")
            at = f" ({mm:.0f} mm at the person)" if mm is not None and mm == mm else ""
            cams = pm.get("cameras") if isinstance(pm.get("cameras"), dict) else {}
            flagged = {k: c for k, c in cams.items() if c.get("flagged")}
            worst = "".join(f" ({k} {stat_label(c['flag'])} "
                            f"{c['flag']['value']:.1f} px: FLAGGED)" for k, c in flagged.items())
            two = pm["reconstructed"].get("points_two_views")  # the others estimated: their error says little
            long = pm["reconstructed"].get("points_one_view_long") or 0.0  # beyond what the motion bridges
            two = (f", {two:.0%} of points seen by two cameras or more" + (
                f" ({long:.0%} without for {ONE_VIEW_RUN_S:g} s or longer)" if long >= 0.005 else "")) \
                if two is not None and two < 0.995 else ""
            print(f"quality: {who}{seen}reprojection median {rp['median']:.2f} px{at}{worst}, bone-length CV "
                  f"{pm['bone_length_cv']['mean']:.2%}, {pm['reconstructed']['frames_all_joints']:.0%} of frames "
                  f"complete{two}")
            for k, c in flagged.items():
                print(f"camera flagged: {pm['name'] + ': ' if who else ''}{flag_text(k, c)}\n  hint: {c.get('hint')}")
            no_one = pm.get("not_a_person") or {"missed": []}
            if no_one["missed"]:  # one line for the cameras that say so (mocap.report.people.not_a_person)
                from mocap.report.people import no_one_hint

                print(f"cameras {', '.join(no_one['missed'])} ({pm['name']}): "
                      f"{no_one_hint(cams, no_one['missed'], no_one['seeing'])}")
            for k, c in cams.items():
                if k in no_one["missed"]:
                    continue
                if c.get("unseen") and not c.get("flagged"):
                    print(f"camera {k} saw no one{' (' + pm['name'] + ')' if who else ''}: {c.get('hint')}")
                elif (c.get("missed") or c.get("swapped_with") or c.get("behind")) and not c.get("flagged"):
                    print(f"camera {k}{' (' + pm['name'] + ')' if who else ''}: {c.get('hint')}")
        if m.get("videos_not_used"):
            print(f"videos not used: {', '.join(m['videos_not_used'])}: no camera of that name in the rig (a video's "
                  "file name is its camera's name): rename it, or add its camera to the calibration")
        cal = m.get("calibration_refinement") or {}
        for mv in (cal.get("camera_moves") or {}).get("moves") or []:
            print(f"camera {mv['camera']} moved mid-take: in frames {move_frames(mv)} it was {mv['turn_deg']:.2f}° / "
                  f"{mv['shift_mm']:.0f} mm from its pose in the others; its detections there are read back into "
                  "that pose (calibration/refined/moves.json); check its mount")
        if cal.get("rig_refined", cal.get("applied")):
            print(refined_line(cal))
            for note in focal_notes(cal):
                print(f"  note: {note}")
        verdict = m.get("verdict", {})
        if verdict.get("failed") or verdict.get("limited"):
            print(f"verdict: {verdict.get('summary', 'failed')}")
    if getattr(args, "strict", False) and _failed(args.session, m):
        return 3  # the run worked, the take did not pass (a script could not tell it from a success)
    return 0


def no_points_line(who: str, name: str, metrics: dict) -> str:
    """The summary's line for a person with no 3D point: not a person (its views never met as one body,
    :func:`mocap.report.people.never_met`), or a reconstruction that failed."""
    return f"quality: {who}no 3D point" + (": its detections never met as one body: not a person?"
                                           if name in (metrics.get("never_met") or [])
                                           else ": its reconstruction failed (see the log)")


def _failed(session: Path, metrics: dict | None) -> bool:
    """Whether the take's verdict failed: this run's report, or (the report up to date) the one it wrote before."""
    import json

    if not metrics:
        path = Path(session) / "report" / "metrics.json"
        try:
            metrics = json.loads(path.read_text()) if path.is_file() else {}
        except (OSError, ValueError):
            metrics = {}
    return bool((metrics.get("verdict") or {}).get("failed"))


def kept_lines(session: Path, sets: list[str]) -> list[str]:
    """The settings kept from earlier commands that this one did not give (a quick test's ``detect.stop=40``
    silently cut every later full run to 40 frames): one line each, and how to drop one."""
    from mocap.config_files import read_toml
    from mocap.settings import kept_not_given

    try:
        kept = kept_not_given(Path(session), sets)
    except ValueError:
        return []
    if not kept:
        return []
    own = Path(session) / "mocap.toml"  # the session's own settings, which a kept value overrides
    try:
        table = read_toml(own) if own.is_file() else {}
    except (OSError, ValueError):
        table = {}

    def over(key: str) -> str:
        stage, _, name = key.partition(".")
        mine = table.get(stage, {}).get(name, kept[key]["value"]) if isinstance(table.get(stage), dict) else None
        return f"; it overrides {own.name}'s {mine!r}" if mine is not None and mine != kept[key]["value"] else ""
    lines = [f"kept from earlier commands: {k} = {v['value']!r} (from `{v.get('from', '?')}`){over(k)}"
             for k, v in kept.items()]
    return lines + [f"  drop one with: mocap config forget {session} KEY"]


def cmd_config_show(args) -> int:
    from mocap.bench.common import format_table
    from mocap.settings import resolve, show, sources

    root = args.session
    if root is not None and not root.is_dir():
        raise FileNotFoundError(f"session folder {root} does not exist" if not root.exists() else
                                f"{root} is a file, not a session folder")
    settings, origin = resolve(sources(root, args.config, args.set))
    rows = show(settings, origin)
    for r in rows:
        for k in ("default", "value"):
            r[k] = "—" if r[k] is None else toml_value(r[k])
    print(format_table(rows, [("key", "key", "s"), ("default", "default", "s"), ("value", "value", "s"),
                              ("source", "source", "s")]))
    return 0


def cmd_config_forget(args) -> int:
    from mocap.settings import forget

    gone = forget(args.session, args.keys)
    print("forgot: " + (", ".join(gone) if gone else "nothing (no such kept setting)"))
    return 0
