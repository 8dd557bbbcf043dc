# ruff: noqa: E501
"""Fuzz cases (tests/fuzz_cases.py): settings and the command line, BVH, boards, skeleton / rig / keypoint-set presets, videos, datasets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from fuzz_cases import GARBAGE, REPO, case, rig, run, sub, truncate
from fuzz_cases_files import to_json

# ----- mocap.toml, --config, --set, command line ---------------------------------------------------------

def cfg_case(id, text, names, where="mocap.toml", **kw):
    def make(ctx):
        if where == "mocap.toml":
            (ctx.s / "mocap.toml").write_bytes(text.encode() if isinstance(text, str) else text)
            return run(ctx)
        path = ctx.w / "cfg.toml"
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        return run(ctx, "--config", str(path))
    case(id, where, make, ("mocap.toml" if where == "mocap.toml" else "cfg.toml", *names), **kw)


for where in ("mocap.toml", "--config"):
    w = "config" if where == "--config" else "mocaptoml"
    cfg_case(f"{w}_unknown_stage", "[refin]\naccel_sigma = 20\n", ["refin"], where)
    cfg_case(f"{w}_unknown_key", "[refine]\naccel_sigm = 20\n", ["accel_sigm"], where)
    cfg_case(f"{w}_wrong_type", '[refine]\naccel_sigma = "fast"\n', ["accel_sigma"], where)
    cfg_case(f"{w}_stage_not_table", "refine = 5\n", ["refine"], where)
    cfg_case(f"{w}_binary", GARBAGE, [], where)
    cfg_case(f"{w}_not_toml", "[refine\naccel_sigma = 20\n", [], where)
cfg_case("mocaptoml_nan", "[triangulate]\nmax_reproj_px = nan\n", ["max_reproj_px"])
cfg_case("mocaptoml_negative", "[refine]\naccel_sigma = -15.0\n", ["accel_sigma"])
cfg_case("mocaptoml_zero_iterations", "[fit]\niterations = 0\n", [], rc=0, keep=False,
         why="0 iterations is a valid request (the fit's initialisation only)")
cfg_case("mocaptoml_huge_int", "[refine]\nmax_iterations = 9223372036854775807\n", [], rc=0, keep=False,
         why="an iteration cap, not a size: the solver stops when it converges")
cfg_case("mocaptoml_bad_format", '[export]\nformats = ["bvh", "doc"]\n', ["doc"])
cfg_case("mocaptoml_formats_string", '[export]\nformats = "bvh,doc"\n', ["doc"])  # a list as words: each checked
cfg_case("mocaptoml_skeleton_dotdot", '[fit]\nskeleton = "../../x"\n', ["../../x"])
cfg_case("mocaptoml_source_dotdot", '[fit]\nsource = "../../x"\n', ["../../x"])
cfg_case("mocaptoml_persons_zero", "[detect]\npersons = 0\n", ["persons"])
cfg_case("mocaptoml_nested_table", "[refine.solver]\naccel_sigma = 1\n", ["solver"])


def _missing_config(ctx):
    return run(ctx, "--config", str(ctx.w / "nothere.toml"))


def _config_is_dir(ctx):
    (ctx.w / "conf.toml").mkdir()
    return run(ctx, "--config", str(ctx.w / "conf.toml"))


case("config_missing_file", "--config", _missing_config, ("nothere.toml",))
case("config_is_folder", "--config", _config_is_dir, ("conf.toml",))


def set_case(id, value, names, command="run", **kw):
    def make(ctx):
        return [command, str(ctx.s), "--set", value]
    case(id, "--set", make, names, **kw)


set_case("set_no_equals", "refine.accel_sigma", ["refine.accel_sigma"])
set_case("set_no_stage", "accel_sigma=20", ["accel_sigma"])
set_case("set_unknown_stage", "refin.accel_sigma=20", ["refin"])
set_case("set_unknown_key", "refine.accel_sigm=20", ["accel_sigm"])
set_case("set_wrong_type", "refine.accel_sigma=abc", ["accel_sigma"])
set_case("set_bool_for_float", "refine.accel_sigma=true", ["accel_sigma"])
set_case("set_nan", "refine.accel_sigma=nan", ["accel_sigma"])
set_case("set_bad_toml", "export.formats=['bvh',", ["export.formats"])
set_case("set_list_for_int", "fit.iterations=[1,2]", ["iterations"])
set_case("set_unknown_format", "export.formats=['bvh','doc']", ["doc"], command="export")
set_case("set_units_bad", "retarget.target=../../../x", ["../../../x"], command="retarget")
set_case("set_empty_key", "=5", ["=5"])


def _unknown_from(ctx):
    return run(ctx, "--from", "refin")


def _missing_session(ctx):
    return ["run", str(ctx.w / "nosuch")]


def _session_is_file(ctx):
    (ctx.w / "file.txt").write_text("x")
    return ["triangulate", str(ctx.w / "file.txt")]


def _config_show_missing(ctx):
    return ["config", "show", str(ctx.w / "nosuch")]


case("cli_from_unknown_stage", "command line", _unknown_from, ("refin",))
case("cli_missing_session", "command line", _missing_session, ("nosuch",))
case("cli_session_is_file", "command line", _session_is_file, ("file.txt",))
case("cli_config_show_missing_session", "command line", _config_show_missing, ("nosuch",))


def _settings_json_garbage(ctx):
    (ctx.s / ".mocap" / "settings.json").write_bytes(GARBAGE)
    return run(ctx)


case("kept_settings_garbage", "settings.json", _settings_json_garbage, ("settings.json",))


# ----- BVH for synth keypoints / dataset synth -------------------------------------------------------------

def bvh_text(folder: Path) -> str:
    """A small valid BVH (the toy skeleton of test_bvh)."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_bvh import toy_motion

    from mocap.io.bvh import write_bvh

    return write_bvh(toy_motion(frames=20), folder / "toy.bvh").read_text()


def bvh_case(id, edit, names=(), command="synth", **kw):
    def make(ctx):
        path = ctx.w / "clip.bvh"
        path.write_text(ctx.bvh)
        edit(path)
        if command == "synth":
            return ["synth", "keypoints", str(ctx.w / "out"), "--bvh", str(path), "--cameras", "2", "--hdf5"]
        return ["dataset", "synth", "--takes", "1", "--bvh", str(path), "--out", str(ctx.w / "d.h5"), "--workers", "1"]
    case(id, f"bvh ({command})", make, ("clip.bvh", *names), **kw)


bvh_case("bvh_frames_zero", lambda p: sub(p, r"Frames: \d+", "Frames: 0", regex=True), ["Frames"])
bvh_case("bvh_frames_negative", lambda p: sub(p, r"Frames: \d+", "Frames: -3", regex=True), ["Frames"])
bvh_case("bvh_frames_too_many", lambda p: sub(p, r"Frames: \d+", "Frames: 99999999999", regex=True), ["Frames"])
bvh_case("bvh_frame_time_zero", lambda p: sub(p, r"Frame Time: \S+", "Frame Time: 0", regex=True), ["Frame Time"])
bvh_case("bvh_frame_time_nan", lambda p: sub(p, r"Frame Time: \S+", "Frame Time: nan", regex=True), ["Frame Time"])
bvh_case("bvh_truncated_after_joint", lambda p: p.write_text(p.read_text()[: p.read_text().index("JOINT") + 5]),
         ["line"])
bvh_case("bvh_truncated_motion", lambda p: truncate(p, 0.8), ["Frames"])
bvh_case("bvh_value_word", lambda p: sub(p, r"(Frame Time: \S+\n\S+ )\S+", r"\g<1>abc", regex=True), ["line", "abc"])
bvh_case("bvh_binary", lambda p: p.write_bytes(GARBAGE))
bvh_case("bvh_empty", lambda p: p.write_bytes(b""))
bvh_case("bvh_missing", lambda p: p.unlink())
bvh_case("bvh_dataset_frames_zero", lambda p: sub(p, r"Frames: \d+", "Frames: 0", regex=True), ["Frames"],
         command="dataset")
bvh_case("bvh_dataset_truncated_after_joint",
         lambda p: p.write_text(p.read_text()[: p.read_text().index("JOINT") + 5]), ["line"], command="dataset")
bvh_case("bvh_dataset_frame_time_zero", lambda p: sub(p, r"Frame Time: \S+", "Frame Time: 0", regex=True),
         ["Frame Time"], command="dataset")


# ----- board TOML ------------------------------------------------------------------------------------------

BOARD = ('type = "charuco"\ndictionary = "DICT_4X4_50"\nsquares_x = 5\nsquares_y = 7\nsquare_size = 0.035\n'
         "marker_size = 0.026\n")


def board_case(id, old, new, names, **kw):
    def make(ctx):
        path = ctx.w / "myboard.toml"
        path.write_text(BOARD.replace(old, new) if old else new)
        assert old is None or old in BOARD
        return ["calibration", "board", str(path), "--out", str(ctx.w / "board.png")]
    case(id, "board toml", make, ("myboard.toml", *names), **kw)


board_case("board_dictionary_charucoboard", '"DICT_4X4_50"', '"CharucoBoard"', ["dictionary", "CharucoBoard"])
board_case("board_square_zero", "square_size = 0.035", "square_size = 0", ["square_size"])
board_case("board_squares_float", "squares_x = 5", "squares_x = 5.5", ["squares_x"])
board_case("board_squares_huge", "squares_x = 5", "squares_x = 100000000", ["squares_x"])
board_case("board_unknown_key", "squares_x = 5", "squares_x = 5\ncolour = 1", ["colour"])
board_case("board_type_unknown", 'type = "charuco"', 'type = "circles"', ["type"])
board_case("board_not_toml", None, "type = = charuco\n", [])


def _calibrate_bad_board(ctx):
    rig(ctx).unlink()
    (ctx.s / "calibration" / "board.toml").write_text(BOARD.replace('"DICT_4X4_50"', '"CharucoBoard"'))
    take = ctx.s / "calibration" / "board"
    take.mkdir()
    for c in ("cam01", "cam02"):
        (take / f"{c}.mp4").write_bytes(GARBAGE)
    return run(ctx)


case("calibrate_board_toml_bad", "board toml", _calibrate_bad_board, ("board.toml", "CharucoBoard"))


# ----- skeleton TOML (fit --skeleton) / target rig TOML (retarget --target) / keypoint-set TOML --------------

def preset_case(id, kind, edit, names, **kw):
    def make(ctx):
        src = REPO / "configs" / ("skeletons/body22.toml" if kind == "skeleton" else "rigs/mixamo.toml")
        path = ctx.w / ("myskel.toml" if kind == "skeleton" else "myrig.toml")
        path.write_text(src.read_text())
        edit(path, ctx)
        if kind == "skeleton":
            return ["fit", str(ctx.s), "--skeleton", str(path)]
        return ["retarget", str(ctx.s), "--target", str(path)]
    case(id, f"{kind} toml", make, ("myskel.toml" if kind == "skeleton" else "myrig.toml", *names), **kw)


def _e(old, new, regex=False):
    return lambda p, ctx: sub(p, old, new, 1, regex)


def _name(value):
    def edit(p, ctx):
        v = json.dumps(value(ctx) if callable(value) else value)
        sub(p, r'(?m)^name = "[^"]*"', lambda m: f"name = {v}", regex=True)
    return edit


for kind, first, child in (("skeleton", 'Hips = { offset = [0.0, 0.0, 0.0] }', 'Spine = { parent = "Hips"'),
                           ("target", '"mixamorig:Hips" = { offset = [0.0, 0.0, 0.0], source = "Hips" }',
                            '"mixamorig:Spine" = { parent = "mixamorig:Hips"')):
    k = "skeleton" if kind == "skeleton" else "target"
    # the fit names motion/<file stem>.npz and ignores the skeleton's `name`: tolerated, nothing written outside
    named = {} if kind == "target" else {"rc": 0, "why": "fit names its output after the file stem, not `name`"}
    preset_case(f"{k}_name_dotdot", kind, _name("../../x"), ["../../x"], **named)
    preset_case(f"{k}_name_absolute", kind, _name(lambda ctx: str(ctx.w / "abs" / "x")), ["abs/x"], **named)
    preset_case(f"{k}_name_slash", kind, _name("a/b"), ["a/b"], **named)
    preset_case(f"{k}_name_nul", kind, _name("x\0y"), ["name"], **named)
    preset_case(f"{k}_name_html", kind, _name("<b>rig</b>"), ["<b>rig</b>"], **named)
    preset_case(f"{k}_name_int", kind, lambda p, ctx: sub(p, r'(?m)^name = "[^"]*"', "name = 5", regex=True),
                ["name"], **named)
    preset_case(f"{k}_binary", kind, lambda p, ctx: p.write_bytes(GARBAGE), [])
    preset_case(f"{k}_truncated", kind, lambda p, ctx: truncate(p, 0.5), [])
    preset_case(f"{k}_unknown_key", kind, _e("[joints]", 'colour = "red"\n[joints]'), ["colour"])
    preset_case(f"{k}_two_roots", kind, _e(child.split(" = { parent")[0] + " = { parent = ",
                                          child.split(" = { parent")[0] + " = { xparent = "), ["root"])
    preset_case(f"{k}_offset_short", kind, _e(first, first.replace("[0.0, 0.0, 0.0]", "[0.0, 0.0]")), ["offset"])
    preset_case(f"{k}_offset_string", kind, _e(first, first.replace("[0.0, 0.0, 0.0]", '"up"')), ["offset"])
preset_case("skeleton_cycle", "skeleton", _e('Hips = { offset = [0.0, 0.0, 0.0] }',
                                             'Hips = { parent = "Spine", offset = [0.0, 0.0, 0.0] }'), ["root"])
preset_case("skeleton_hinge_no_axis", "skeleton", _e(', type = "hinge", axis = [0.0, 0.0, -1.0]', ', type = "hinge"'),
            ["LeftForeArm", "axis"])
preset_case("skeleton_limits_string", "skeleton", _e("limits = [-5.0, 160.0]", 'limits = "wide"'),
            ["LeftForeArm", "limits"])
preset_case("skeleton_axis_zero", "skeleton", _e("axis = [0.0, 0.0, -1.0]", "axis = [0.0, 0.0, 0.0]"),
            ["LeftForeArm", "axis"])
preset_case("target_units_feet", "target", _e('units = "cm"', 'units = "feet"'), ["units"])
preset_case("target_source_unknown", "target", _e('source = "Hips"', 'source = "Tail"'), ["Tail"])
preset_case("target_up_x", "target", _e('up = "y"', 'up = "x"'), ["up"])


def _missing_target(ctx):
    return ["retarget", str(ctx.s), "--target", str(ctx.w / "nothere.toml")]


def _missing_skeleton(ctx):
    return ["fit", str(ctx.s), "--skeleton", str(ctx.w / "nothere.toml")]


case("target_missing_file", "target toml", _missing_target, ("nothere.toml",))
case("skeleton_missing_file", "skeleton toml", _missing_skeleton, ("nothere.toml",))

KEYPOINTS = (REPO / "configs" / "keypoints" / "blazepose33.toml")


def ks_case(id, edit, names, **kw):
    def make(ctx):
        path = ctx.w / "myset.toml"
        path.write_text(KEYPOINTS.read_text())
        edit(path)
        to_json(ctx)
        (ctx.s / "session.toml").write_text(f"fps = 30.0\nkeypoint_set = {json.dumps(str(path))}\n")
        return run(ctx)
    case(id, "keypoint-set toml", make, ("myset.toml", *names), **kw)


ks_case("keypoints_repeat_joint", lambda p: sub(p, '"left_eye_inner"', '"nose"'), ["nose"])
ks_case("keypoints_limb_unknown_joint", lambda p: sub(p, "limbs = [", 'limbs = [["tail", "nose"], '), ["tail"])
ks_case("keypoints_unknown_key", lambda p: sub(p, "joints = [", 'colour = "red"\njoints = ['), ["colour"])
ks_case("keypoints_joints_int", lambda p: sub(p, r"joints = \[[^\]]*\]", "joints = 5", regex=True), ["joints"])
ks_case("keypoints_binary", lambda p: p.write_bytes(GARBAGE), [])
ks_case("keypoints_fewer_joints", lambda p: sub(p, '"nose", ', ""), ["nose"])


# ----- videos, detection --------------------------------------------------------------------------------------

def video_case(id, content, names, **kw):
    def make(ctx):
        d = ctx.s / "videos"
        d.mkdir()
        for c in ("cam01", "cam02", "cam03", "cam04"):
            (d / f"{c}.mp4").write_bytes(content(c) if callable(content) else content)
        return run(ctx)
    case(id, "video", make, names, **kw)


video_case("video_empty_files", b"", ["cam01.mp4"])
video_case("video_garbage", GARBAGE, ["cam01.mp4"])
video_case("video_garbage_one_camera", lambda c: GARBAGE if c == "cam03" else b"", ["cam0"])


def write_videos(ctx, frames=4, size=(1280, 720)) -> Path:
    import cv2

    d = ctx.s / "videos"
    d.mkdir()
    for c in ("cam01", "cam02", "cam03", "cam04"):
        vw = cv2.VideoWriter(str(d / f"{c}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, size)
        for k in range(frames):
            vw.write(np.full((size[1], size[0], 3), 40 * k, np.uint8))
        vw.release()
    return d


def _onnx_garbage(ctx):
    write_videos(ctx)
    (ctx.w / "model.onnx").write_bytes(GARBAGE)
    return ["detect", str(ctx.s), "--detector", "onnx", "--model", str(ctx.w / "model.onnx")]


def _onnx_missing(ctx):
    write_videos(ctx)
    return ["detect", str(ctx.s), "--detector", "onnx", "--model", str(ctx.w / "absent.onnx")]


def _tflite_garbage(ctx):
    write_videos(ctx)
    (ctx.w / "pose.tflite").write_bytes(GARBAGE)
    return ["detect", str(ctx.s), "--variant", "heavy", "--model", str(ctx.w / "pose.tflite")]


def _video_not_in_rig(ctx):
    d = write_videos(ctx)
    (d / "cam04.mp4").rename(d / "cam99.mp4")
    return ["detect", str(ctx.s)]


case("detect_onnx_garbage_model", "detection", _onnx_garbage, ("model.onnx",))
case("detect_onnx_missing_model", "detection", _onnx_missing, ("absent.onnx",))
case("detect_tflite_garbage_model", "detection", _tflite_garbage, ("pose.tflite",))
case("detect_video_not_in_rig", "detection", _video_not_in_rig, ("cam99",))


# ----- dataset files ------------------------------------------------------------------------------------------

def ds_info(id, content, names, **kw):
    def make(ctx):
        path = ctx.w / "data.h5"
        if content == "pose2d":
            shutil.copy(ctx.s / "pose2d.h5", path)
        elif content is not None:
            path.write_bytes(content)
        return ["dataset", "info", str(path)]
    case(id, "dataset", make, ("data.h5", *names), **kw)


ds_info("dataset_info_garbage", GARBAGE, [])
ds_info("dataset_info_empty", b"", [])
ds_info("dataset_info_missing", None, [])
ds_info("dataset_info_hdf5_not_dataset", "pose2d", [])


def _build_into_session(ctx):
    return ["dataset", "build", str(ctx.s), "--out", str(ctx.s / "pose2d.h5"), "--workers", "1"]


def _build_into_folder(ctx):
    return ["dataset", "build", str(ctx.s), "--out", str(ctx.w), "--workers", "1"]


def _build_missing_session(ctx):
    return ["dataset", "build", str(ctx.w / "nosuch"), "--out", str(ctx.w / "d.h5"), "--workers", "1"]


case("dataset_build_out_in_session", "dataset", _build_into_session, ("pose2d.h5",))
case("dataset_build_out_folder", "dataset", _build_into_folder, ("give a file name",))
case("dataset_build_missing_session", "dataset", _build_missing_session, ("nosuch",))


