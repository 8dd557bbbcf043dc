"""Synthetic ground truth on the body22 skeleton: a smooth motion and BlazePose 33 keypoints placed
on it (joint centres, plus face, hand and foot points at fixed offsets in their segment frames)."""

from __future__ import annotations

import numpy as np

from mocap.geometry.rotations import axis_angle_to_matrix, matrix_to_quat, quat_continuous
from mocap.keypoint_sets import get_keypoint_set
from mocap.skeletons import load_skeleton
from mocap.types import Motion

# keypoint → (joint, offset in the joint's rest frame, metres); the vectors in body22.toml agree
OFFSETS = {
    "nose": ("Head", (0.0, -0.10, -0.01)), "left_ear": ("Head", (0.075, 0.0, 0.0)),
    "right_ear": ("Head", (-0.075, 0.0, 0.0)), "left_eye": ("Head", (0.032, -0.08, 0.02)),
    "right_eye": ("Head", (-0.032, -0.08, 0.02)), "left_eye_inner": ("Head", (0.015, -0.085, 0.02)),
    "right_eye_inner": ("Head", (-0.015, -0.085, 0.02)), "left_eye_outer": ("Head", (0.048, -0.07, 0.02)),
    "right_eye_outer": ("Head", (-0.048, -0.07, 0.02)), "mouth_left": ("Head", (0.025, -0.085, -0.06)),
    "mouth_right": ("Head", (-0.025, -0.085, -0.06)),
    "left_index": ("LeftHand", (0.08, -0.02, 0.0)), "left_pinky": ("LeftHand", (0.08, 0.02, 0.0)),
    "left_thumb": ("LeftHand", (0.05, -0.05, 0.0)), "right_index": ("RightHand", (-0.08, -0.02, 0.0)),
    "right_pinky": ("RightHand", (-0.08, 0.02, 0.0)), "right_thumb": ("RightHand", (-0.05, -0.05, 0.0)),
    "left_heel": ("LeftFoot", (0.0, 0.07, -0.06)), "right_heel": ("RightFoot", (0.0, 0.07, -0.06)),
}
JOINTS = {"left_shoulder": "LeftArm", "right_shoulder": "RightArm", "left_elbow": "LeftForeArm",
          "right_elbow": "RightForeArm", "left_wrist": "LeftHand", "right_wrist": "RightHand",
          "left_hip": "LeftUpLeg", "right_hip": "RightUpLeg", "left_knee": "LeftLeg", "right_knee": "RightLeg",
          "left_ankle": "LeftFoot", "right_ankle": "RightFoot", "left_foot_index": "LeftToeBase",
          "right_foot_index": "RightToeBase"}


def body_motion(frames: int = 240, fps: float = 60.0, seed: int = 0, scale: float = 1.05) -> Motion:
    """A smooth, plausible motion of body22 (scaled): walking in a circle with swinging limbs."""
    spec = load_skeleton("body22")
    sk = spec.skeleton
    sk = type(sk)(sk.joint_names, sk.parents, sk.offsets * scale)
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / fps
    J = len(sk.joint_names)
    rv = np.zeros((frames, J, 3))
    for j, name in enumerate(sk.joint_names):
        js = spec.joints[name]
        amp = rng.uniform(0.1, 0.5, 3)
        freq = rng.uniform(0.3, 1.5, 3)
        phase = rng.uniform(0, 2 * np.pi, 3)
        wave = amp * np.sin(2 * np.pi * freq * t[:, None] + phase)
        if js.type == "hinge":
            lo, hi = np.radians(js.limits_deg)
            ang = (lo + hi) / 2 * 0.6 + (hi - lo) / 2 * 0.5 * np.sin(2 * np.pi * freq[0] * t + phase[0])
            rv[:, j] = ang[:, None] * np.asarray(js.axis) / np.linalg.norm(js.axis)
        elif name.endswith("Arm") or name.endswith("UpLeg"):
            rv[:, j] = wave
            if name.endswith("Arm"):  # arms down-ish, away from the T-pose
                rv[:, j, 1] += 1.0 if name.startswith("Left") else -1.0
        elif name.endswith("Shoulder"):  # clavicles still: the Neck stays the mid-shoulder point it maps to
            continue
        elif name == "Hips":
            rv[:, j] = [0.0, 0.0, 0.5] * t[:, None] + 0.1 * wave
        else:
            rv[:, j] = 0.4 * wave
    q = quat_continuous(matrix_to_quat(axis_angle_to_matrix(rv)), axis=0)
    root = np.stack([0.8 * np.cos(0.5 * t), 0.8 * np.sin(0.5 * t), np.full_like(t, 1.0)], axis=1)
    return Motion(sk, q, root, fps)


def blazepose_keypoints(motion: Motion) -> np.ndarray:
    """(F, 33, 3) world keypoints on the motion."""
    kps = get_keypoint_set("blazepose33")
    Rw, p = motion.fk()
    sk = motion.skeleton
    out = np.zeros((motion.n_frames, len(kps.joints), 3))
    for k, name in enumerate(kps.joints):
        if name in JOINTS:
            out[:, k] = p[:, sk.index(JOINTS[name])]
        else:
            j, off = OFFSETS[name]
            out[:, k] = p[:, sk.index(j)] + Rw[:, sk.index(j)] @ np.asarray(off)
    return out


def noisy_hands_take(frames: int, fps: float, seed: int, body_sigma: float, hand_sigma: float):
    """A body with finger curls: its 42 hand keypoints (F, 42, 3) and the BlazePose body + hands keypoints with
    Gaussian noise (metres) of σ ``body_sigma`` / ``hand_sigma`` (F, 75, 3)."""
    from mocap.synth.fingers import add_fingers, finger_curls, hand_keypoints

    m22 = body_motion(frames, fps, seed=seed)
    m52 = add_fingers(m22, finger_curls(frames, fps, seed=seed + 1))
    rng = np.random.default_rng(seed)
    body, hands = blazepose_keypoints(m22), hand_keypoints(m52)
    return hands, np.concatenate([body + rng.normal(0, body_sigma, body.shape),
                                  hands + rng.normal(0, hand_sigma, hands.shape)], axis=1)


def body22_problem(vector_joint: str):
    """(IK problem, joint names) of body22 with every joint's model (hinges, 2-DoF) and one orientation vector on
    ``vector_joint``, rest direction −Y (forward)."""
    from mocap.fit.hands import joint_models, models_of
    from mocap.fit.ik import IKProblem

    spec = load_skeleton("body22")
    names = list(spec.skeleton.joint_names)
    hinges, limits, dof2 = models_of(joint_models(spec, names), list(range(len(names))))
    return IKProblem(spec.skeleton, hinges, limits, np.array([names.index(vector_joint)]),
                     np.array([[0.0, -1.0, 0.0]]), dof2=dof2), names
