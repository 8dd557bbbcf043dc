# ruff: noqa: E501
"""Fuzz cases (tests/fuzz_cases.py): the session's files: rigs, session.toml, 2D and 3D keypoints, captures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from fuzz_cases import (
    GARBAGE,
    case,
    h5attr,
    h5edit,
    h5replace,
    h5strings,
    npz_edit,
    rig,
    rig_bytes,
    rig_case,
    run,
    sub,
    truncate,
)

# ----- rig.toml (the project's format) ------------------------------------------------------------------

rig_case("rig_version_string", "version = 1", 'version = "one"', ["version"])
rig_case("rig_version_float", "version = 1", "version = 1.5", ["version"])
rig_case("rig_version_future", "version = 1", "version = 99", ["version"])
rig_case("rig_format_other", 'format = "mocap-rig"', 'format = "other"', [])
rig_case("rig_unknown_top_key", "version = 1", 'version = 1\ncolour = "red"', ["colour"])
rig_case("rig_unknown_camera_key", 'model = "pinhole"', 'model = "pinhole"\nzoom = 2', ["zoom"])
rig_case("rig_model_unknown", 'model = "pinhole"', 'model = "spherical"', ["cam01", "spherical"])
rig_case("rig_K_nan", "K = [[1073.9344486405575", "K = [[nan", ["cam01", "K"])
rig_case("rig_K_zero_focal", "K = [[1073.9344486405575", "K = [[0.0", ["cam01"])
rig_case("rig_K_negative_focal", "K = [[1073.9344486405575", "K = [[-1073.9", ["cam01"])
rig_case("rig_K_wrong_shape", r"K = \[\[1073[^=]*?\]\]\n", "K = [[1.0, 2.0], [3.0, 4.0]]\n", ["cam01", "K"],
         regex=True)
rig_case("rig_K_string", r"K = \[\[1073[^=]*?\]\]\n", 'K = "identity"\n', ["cam01", "K"], regex=True)
rig_case("rig_dist_string", "dist = [-0.08, 0.02, 0.0005, -0.0005, 0.0]", 'dist = "none"', ["cam01", "dist"])
rig_case("rig_dist_inf", "dist = [-0.08,", "dist = [inf,", ["cam01", "dist"])
rig_case("rig_size_negative", "size = [1280, 720]", "size = [-1280, 720]", ["cam01", "size"])
rig_case("rig_size_zero", "size = [1280, 720]", "size = [0, 0]", ["cam01", "size"])
rig_case("rig_size_huge", "size = [1280, 720]", "size = [9223372036854775807, 9223372036854775807]",
         ["cam01", "size"])
rig_case("rig_size_one_number", "size = [1280, 720]", "size = 1280", ["cam01", "size"])
rig_case("rig_rotation_zeros", r"rotation = \[\[-0\.4999[^=]*?\]\]\n",
         "rotation = [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]\n", ["cam01", "rotation"], regex=True)
rig_case("rig_rotation_mirror", r"rotation = \[\[-0\.4999[^=]*?\]\]\n",
         "rotation = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]]\n", ["cam01", "rotation"], regex=True)
rig_case("rig_missing_rotation", r"rotation = \[\[-0\.4999[^=]*?\]\]\n", "", ["cam01", "rotation"], regex=True)
rig_case("rig_translation_inf", "translation = [-0.43682418052690775,", "translation = [inf,", ["cam01", "translation"])
rig_case("rig_translation_short", "translation = [-0.43682418052690775, 0.8132033939837886, 4.960127330459068]",
         "translation = [1.0, 2.0]", ["cam01", "translation"])
rig_case("rig_name_dotdot", 'name = "cam01"', 'name = "../cam01"', ["../cam01"])
rig_case("rig_name_slash", 'name = "cam01"', 'name = "a/b"', ["a/b"])
rig_case("rig_name_absolute", 'name = "cam01"', 'name = "/etc/cam01"', ["/etc/cam01"])
rig_case("rig_name_nul", 'name = "cam01"', r'name = "cam\u000001"', ["cam"])
rig_case("rig_name_not_string", 'name = "cam01"', "name = 7", ["name"])
rig_case("rig_name_empty", 'name = "cam01"', 'name = ""', ["name"])
rig_case("rig_name_duplicate", 'name = "cam02"', 'name = "cam01"', ["cam01"])
rig_case("rig_cameras_not_in_pose2d", 'name = "cam04"', 'name = "cam05"', ["pose2d.h5", "cam05"])


def _cameras_int(ctx):
    text = rig(ctx).read_text()
    rig(ctx).write_text(text[: text.index("[[cameras]]")] + "cameras = 5\n")
    return run(ctx)


case("rig_cameras_int", "rig.toml", _cameras_int, ("rig.toml", "cameras"))


def _no_cameras(ctx):
    text = rig(ctx).read_text()
    rig(ctx).write_text(text[: text.index("[[cameras]]")])
    return run(ctx)


case("rig_no_cameras", "rig.toml", _no_cameras, ("rig.toml", "cameras"))
rig_bytes("rig_empty", b"", [])
rig_bytes("rig_binary", GARBAGE, [])
rig_bytes("rig_invalid_utf8", b'format = "mocap-rig\xff\xfe"\n', [])


def _rig_truncated(ctx):
    truncate(rig(ctx), 0.4)
    return run(ctx)


case("rig_truncated", "rig.toml", _rig_truncated, ("rig.toml",))


# ----- other rig formats -----------------------------------------------------------------------------

def _as_format(ctx, kind: str) -> Path:
    """Replace rig.toml by the same rig in another format; returns the new file."""
    from mocap.io.rig_files import read_rig, write_anipose_toml

    r = read_rig(rig(ctx))
    rig(ctx).unlink()
    cal = ctx.s / "calibration"
    if kind == "anipose":
        return write_anipose_toml(r, cal / "calibration.toml")
    if kind == "pose2sim":
        return write_anipose_toml(r, cal / "Calib_scene.toml")
    if kind == "yml":
        from mocap.io.opencv_yaml import write_opencv_yaml

        return write_opencv_yaml(r, cal / "intri.yml")
    if kind == "qca":
        return write_qca(r, cal / "Calib.qca.txt")
    raise AssertionError(kind)


def write_qca(r, path: Path) -> Path:
    """A Qualisys .qca.txt (XML) for a rig (the reader's conventions: see mocap.io.qualisys)."""
    flip = np.diag([1.0, -1.0, -1.0])
    cams = []
    for c in r.cameras:
        R, t = c.cam_from_world[:3, :3], c.cam_from_world[:3, 3]
        rows = flip @ R
        centre = -R.T @ t * 1000.0
        K, d = c.K, list(c.dist) + [0.0] * 5
        w, h = c.size
        tr = " ".join([f'{k}="{v!r}"' for k, v in zip("xyz", centre.tolist(), strict=True)]
                      + [f'r{a + 1}{b + 1}="{rows[a, b]!r}"' for a in range(3) for b in range(3)])
        cams.append(
            f'<camera active="1" serial="{c.name}" viewrotation="0">\n'
            f"<transform {tr}/>\n"
            f'<intrinsic focalLengthU="{K[0, 0] * 64!r}" focalLengthV="{K[1, 1] * 64!r}" '
            f'centerPointU="{K[0, 2] * 64!r}" centerPointV="{K[1, 2] * 64!r}" skew="0" '
            f'radialDistortion1="{d[0]!r}" radialDistortion2="{d[1]!r}" radialDistortion3="{d[4]!r}" '
            f'tangentalDistortion1="{d[2]!r}" tangentalDistortion2="{d[3]!r}"/>\n'
            f'<fov_video left="0" top="0" right="{w - 1}" bottom="{h - 1}"/>\n</camera>')
    path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<calibration>\n<cameras>\n' + "\n".join(cams)
                    + "\n</cameras>\n</calibration>\n")
    return path


def fmt_case(id, kind, edit, names, **kw):
    def make(ctx):
        path = _as_format(ctx, kind)
        edit(path)
        return run(ctx)
    case(id, {"anipose": "calibration.toml", "pose2sim": "Calib*.toml", "yml": "intri.yml",
              "qca": ".qca.txt"}[kind], make, names, **kw)


def _write(content):
    return lambda p: p.write_bytes(content)


def _sub(old, new, count=1, regex=False):
    return lambda p: sub(p, old, new, count, regex)


fmt_case("anipose_no_cameras", "anipose", _write(b"[metadata]\nadjusted = false\n"), ["calibration.toml"])
fmt_case("anipose_missing_matrix", "anipose", _sub(r"matrix = \[[^=]*?\n\]\n", "", regex=True),
         ["calibration.toml", "matrix"])
fmt_case("anipose_rotation_short", "anipose", _sub(r"rotation = \[[^=]*?\]\n", "rotation = [1.0, 2.0]\n",
                                                   regex=True), ["calibration.toml", "rotation"])
fmt_case("anipose_fisheye_string", "anipose", _sub("fisheye = false", 'fisheye = "yes"'),
         ["calibration.toml", "fisheye"])
fmt_case("anipose_name_dotdot", "anipose", _sub('name = "cam01"', 'name = "../../x"'), ["calibration.toml", "../../x"])
fmt_case("anipose_name_html", "anipose", _sub('name = "cam01"', 'name = "<b>cam01</b>"'),
         ["calibration.toml", "<b>cam01</b>"])
fmt_case("anipose_truncated", "anipose", lambda p: truncate(p, 0.3), ["calibration.toml"])
fmt_case("anipose_binary", "anipose", _write(GARBAGE), ["calibration.toml"])
fmt_case("pose2sim_translation_nan", "pose2sim", _sub(r"translation = \[\n\s*-0\.4368\d*,",
                                                      "translation = [nan,", regex=True),
         ["Calib_scene.toml", "translation"])
fmt_case("pose2sim_size_strings", "pose2sim", _sub(r"size = \[\n\s*1280,\n\s*720,\n\]", 'size = ["w", "h"]',
                                                   regex=True), ["Calib_scene.toml", "size"])
fmt_case("qca_not_xml", "qca", _write(GARBAGE), ["Calib.qca.txt"])
fmt_case("qca_truncated", "qca", lambda p: truncate(p, 0.5), ["Calib.qca.txt"])
fmt_case("qca_focal_word", "qca", _sub('focalLengthU="', 'focalLengthU="wide" x="'), ["Calib.qca.txt", "focalLengthU"])
fmt_case("qca_focal_zero", "qca", _sub(r'focalLengthU="[^"]*"', 'focalLengthU="0"', regex=True),
         ["Calib.qca.txt", "cam01"])
fmt_case("qca_serial_dotdot", "qca", _sub('serial="cam01"', 'serial="../x"'), ["Calib.qca.txt", "../x"])
fmt_case("qca_missing_fov", "qca", _sub(r"<fov_video[^>]*/>", "", regex=True), ["Calib.qca.txt", "fov_video"])
fmt_case("qca_no_cameras", "qca", _write(b"<calibration><cameras></cameras></calibration>"), ["Calib.qca.txt"])
fmt_case("qca_rotation_zeros", "qca", _sub(r'r11="[^"]*"', 'r11="0" r99="0"', regex=True), ["Calib.qca.txt", "cam01"])
fmt_case("qca_viewrotation", "qca", _sub('viewrotation="0"', 'viewrotation="90"'), ["Calib.qca.txt", "viewrotation"])
fmt_case("yml_garbage", "yml", _write(GARBAGE), ["intri.yml"])
fmt_case("yml_empty", "yml", _write(b""), ["intri.yml"])
fmt_case("yml_truncated", "yml", lambda p: truncate(p, 0.5), ["intri.yml"])
fmt_case("yml_name_dotdot", "yml", _sub("   - cam02", "   - ../cam02"), ["intri.yml", "../cam02"])
fmt_case("yml_T_short", "yml", _sub(r"(T_cam01: !!opencv-matrix\n\s*rows: )3(\n\s*cols: 1\n\s*dt: d\n\s*data: "
                                    r"\[) [^,]*,", r"\g<1>2\g<2>", regex=True), ["intri.yml", "cam01", "T_cam01"])


# ----- session.toml -----------------------------------------------------------------------------------

def meta_case(id, text, names, **kw):
    def make(ctx):
        (ctx.s / "session.toml").write_bytes(text.encode() if isinstance(text, str) else text)
        return run(ctx)
    case(id, "session.toml", make, ("session.toml", *names), **kw)


meta_case("session_fps_zero", 'fps = 0\nkeypoint_set = "blazepose33"\n', ["fps"])
meta_case("session_fps_negative", 'fps = -30.0\nkeypoint_set = "blazepose33"\n', ["fps"])
meta_case("session_fps_nan", 'fps = nan\nkeypoint_set = "blazepose33"\n', ["fps"])
meta_case("session_fps_string", 'fps = "fast"\nkeypoint_set = "blazepose33"\n', ["fps"])
meta_case("session_keypoint_set_unknown", 'fps = 30.0\nkeypoint_set = "body99"\n', ["keypoint_set", "body99"])
meta_case("session_keypoint_set_int", "fps = 30.0\nkeypoint_set = 33\n", ["keypoint_set"])
meta_case("session_unknown_key", 'fps = 30.0\nkeypoint_set = "blazepose33"\ncolour = "red"\n', ["colour"])
meta_case("session_binary", GARBAGE, [])
meta_case("session_not_toml", "fps = = 30\n", [])


# ----- OpenPose JSON folders ---------------------------------------------------------------------------

def to_json(ctx) -> Path:
    from mocap.io.hdf5 import read_keypoints2d
    from mocap.io.openpose import write_openpose

    kp = read_keypoints2d(ctx.s / "pose2d.h5")
    (ctx.s / "pose2d.h5").unlink()
    return write_openpose(kp, ctx.s / "pose2d")


def json_case(id, edit, names, **kw):
    def make(ctx):
        root = to_json(ctx)
        edit(root)
        return run(ctx)
    case(id, "openpose json", make, names, **kw)


def _frame(root, cam="cam02", k=3) -> Path:
    return sorted((root / cam).glob("*.json"))[k]


FRAME3 = "cam02_000000000003_keypoints.json"
json_case("json_people_dict", lambda r: _frame(r).write_text('{"people": {"a": 1}}'), [FRAME3, "cam02"])
json_case("json_no_people_key", lambda r: _frame(r).write_text('{"peeple": []}'), [FRAME3, "cam02"])
json_case("json_binary", lambda r: _frame(r).write_bytes(GARBAGE), [FRAME3, "cam02"])
json_case("json_empty_file", lambda r: _frame(r).write_bytes(b""), [FRAME3, "cam02"])
json_case("json_truncated", lambda r: truncate(_frame(r), 0.5), [FRAME3, "cam02"])
json_case("json_short_keypoints", lambda r: _frame(r).write_text('{"people": [{"pose_keypoints_2d": [1, 2]}]}'),
          [FRAME3, "cam02"])
json_case("json_string_values", lambda r: _frame(r).write_text(
    json.dumps({"people": [{"pose_keypoints_2d": ["a"] * 99}]})), [FRAME3, "cam02"])
json_case("json_wrong_joint_count", lambda r: _frame(r).write_text(
    json.dumps({"people": [{"pose_keypoints_2d": [1.0, 2.0, 0.9] * 17}]})), [FRAME3, "cam02"])
json_case("json_huge_number", lambda r: _frame(r).write_text(
    '{"people": [{"pose_keypoints_2d": [' + ", ".join(["1e400, 2.0, 0.9"] * 33) + "]}]}"), [FRAME3, "cam02"])
json_case("json_unknown_camera_folder", lambda r: (r / "cam02").rename(r / "cam09"), ["pose2d", "cam09"])
json_case("json_missing_frame", lambda r: _frame(r).unlink(), ["pose2d", "cam02"])


def _empty_cam(root):
    for p in (root / "cam03").glob("*.json"):
        p.unlink()


json_case("json_camera_without_files", _empty_cam, ["pose2d", "cam03"])


# ----- pose2d.h5 ------------------------------------------------------------------------------------------

def p2_case(id, edit, names=(), **kw):
    def make(ctx):
        edit(ctx.s / "pose2d.h5")
        return run(ctx)
    case(id, "pose2d.h5", make, ("pose2d.h5", *names), **kw)


def _h5(fn):
    return lambda p: h5edit(p, fn)


F, C, P, J = 120, 4, 1, 33
p2_case("pose2d_keypoints_4d", _h5(h5replace("keypoints", np.zeros((F, C, J, 3), np.float32))), ["keypoints"])
p2_case("pose2d_keypoints_last_dim_2", _h5(h5replace("keypoints", np.zeros((F, C, P, J, 2), np.float32))),
        ["keypoints"])
p2_case("pose2d_keypoints_strings", _h5(h5replace("keypoints", np.array([b"x"] * 3))), ["keypoints"])
p2_case("pose2d_joint_count", _h5(h5replace("keypoints", np.zeros((F, C, P, 17, 3), np.float32))), ["17"])
p2_case("pose2d_no_keypoints", _h5(lambda f: f.__delitem__("keypoints")), ["keypoints"])
p2_case("pose2d_camera_names_short", _h5(h5attr("camera_names", h5strings(["cam01", "cam02"]))), ["camera"])
p2_case("pose2d_camera_order", _h5(h5attr("camera_names", h5strings(["cam02", "cam01", "cam03", "cam04"]))),
        ["rig.toml"])
p2_case("pose2d_camera_name_dotdot", _h5(h5attr("camera_names", h5strings(["../x", "cam02", "cam03", "cam04"]))),
        ["../x"])
p2_case("pose2d_fps_zero", _h5(h5attr("fps", 0.0)), ["fps"])
p2_case("pose2d_fps_nan", _h5(h5attr("fps", np.nan)), ["fps"])
p2_case("pose2d_fps_string", _h5(h5attr("fps", "fast")), ["fps"])
p2_case("pose2d_keypoint_set_unknown", _h5(h5attr("keypoint_set", "body99")), ["keypoint_set"])
p2_case("pose2d_keypoint_set_path", _h5(h5attr("keypoint_set", "../../../etc/x.toml")), ["keypoint"])
p2_case("pose2d_version_string", _h5(h5attr("version", "two")), ["version"])
p2_case("pose2d_complete_shape", _h5(h5replace("complete", np.ones(C + 1, bool))), ["complete"])
p2_case("pose2d_zero_frames", _h5(h5replace("keypoints", np.zeros((0, C, P, J, 3), np.float32))), ["frames"])
p2_case("pose2d_all_nan", _h5(h5replace("keypoints", np.full((F, C, P, J, 3), np.nan, np.float32))), [])
p2_case("pose2d_truncated", lambda p: truncate(p, 0.5), [])
p2_case("pose2d_binary", lambda p: p.write_bytes(GARBAGE), [])
p2_case("pose2d_empty", lambda p: p.write_bytes(b""), [])


def _inf_keypoints(f):
    k = f["keypoints"][()]
    k[5, 1, 0, 3, :2] = np.inf
    h5replace("keypoints", k)(f)


p2_case("pose2d_inf_values", _h5(_inf_keypoints), ["keypoints"])


# ----- points3d/*.h5 (read by fit) -------------------------------------------------------------------------

def p3_case(id, edit, names=(), **kw):
    def make(ctx):
        edit(ctx.s / "points3d" / "refined.h5")
        return ["fit", str(ctx.s), "--overwrite"]
    case(id, "points3d h5", make, ("refined.h5", *names), **kw)


p3_case("points3d_xyz_3d", _h5(h5replace("xyz", np.zeros((F, J, 3)))), ["xyz"])
p3_case("points3d_views_float", _h5(h5replace("views", np.full((F, 1, J, C), 0.5))), ["views"])
p3_case("points3d_reproj_shape", _h5(h5replace("reproj_err", np.zeros((F, 1, J + 1), np.float32))), ["reproj_err"])
p3_case("points3d_info_not_json", _h5(h5attr("info", "{not json")), ["info"])
p3_case("points3d_fps_zero", _h5(h5attr("fps", 0.0)), ["fps"])
p3_case("points3d_xyz_strings", _h5(h5replace("xyz", np.array([b"x"] * 3))), ["xyz"])
p3_case("points3d_truncated", lambda p: truncate(p, 0.5), [])
p3_case("points3d_binary", lambda p: p.write_bytes(GARBAGE), [])
p3_case("points3d_all_nan", _h5(h5replace("xyz", np.full((F, 1, J, 3), np.nan))), [])


# ----- motion/*.npz capture files (read by retarget and export) -------------------------------------------

def npz_case(id, edit, names=(), command="retarget", motion="body22", **kw):
    def make(ctx):
        edit(ctx.s / "motion" / f"{motion}.npz")
        return [command, str(ctx.s), "--overwrite"]
    case(id, "capture npz", make, (f"{motion}.npz", *names), **kw)


npz_case("npz_truncated", lambda p: truncate(p, 0.5))
npz_case("npz_binary", lambda p: p.write_bytes(GARBAGE))
npz_case("npz_empty", lambda p: p.write_bytes(b""))
npz_case("npz_fps_zero", lambda p: npz_edit(p, fps=np.array(0.0)), ["fps"])
npz_case("npz_fps_inf", lambda p: npz_edit(p, fps=np.array(np.inf)), ["fps"])
npz_case("npz_rotations_shape", lambda p: npz_edit(p, rotations=np.zeros((F, 3, 4))), ["rotations"])
npz_case("npz_no_rotations", lambda p: npz_edit(p, drop=["rotations"]), ["rotations"])
npz_case("npz_object_array", lambda p: npz_edit(p, rotations=np.array([{"a": 1}], dtype=object)), ["rotations"])
npz_case("npz_parents_two_roots", lambda p: npz_edit(p, parents=np.full(22, -1, np.int32)), ["root"])
npz_case("npz_export_mixamo_fps_nan", lambda p: npz_edit(p, fps=np.array(np.nan)), ["fps"], command="export",
         motion="mixamo")
npz_case("npz_export_truncated", lambda p: truncate(p, 0.7), command="export", motion="mixamo")
npz_case("npz_report_body22_truncated", lambda p: truncate(p, 0.7), command="report", rc=0,
         why="the report reads the 3D points and the 2D, not the fitted motion")


