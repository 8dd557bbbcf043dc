"""Datasets: many takes in one HDF5 file, built locally or on a Dask cluster, read as windows.

Layout (``schema_version`` 1)::

    /                         attrs: schema_version, kind="mocap-dataset"
    /takes/<id>/              one complete take (attrs: fps, keypoint_set, keypoint_names, camera_names,
                              joint_names (those three JSON lists: json.loads them), session, config (TOML),
                              versions (JSON), frames, sync_offsets_frames (JSON: camera → the offset applied,
                              frames), rig_joint_names (JSON, rendered takes only))
        keypoints2d           (F, C, K, 3) x, y, score (float32, or float16 with --float16): the performer's 2D
                              as triangulate read them (the detection picked across views when a view holds
                              several; sync offsets applied, left/right swaps repaired), not slot 0 of pose2d.h5
        points3d              (F, K, 3) refined 3D keypoints, metres, Z up (NaN = missing)
        reproj_err            (F, K) pixels
        rotations             (F, J, 4) fitted local joint rotations, wxyz
        root_positions        (F, 3)
        skeleton/parents (J,), skeleton/offsets (J, 3)
        cameras/K (C,3,3), cameras/dist (C,5), cameras/cam_from_world (C,4,4), cameras/size (C,2),
        cameras/model (C,)    pinhole (dist: k1, k2, p1, p2, k3) or fisheye (dist: k1..k4, then 0); absent in
                              files built before it was stored: pinhole. ``reader.take_rig`` reads them as a Rig
        groundtruth/points3d  (F, K, 3) synthetic takes only (and groundtruth/rig_joints, ...)
    /log                      one JSON line per event (id, take, status committed | failed, error, time)
    /index/                   contiguous copies for fast random windows: points3d (N, K, 3),
                              rotations (N, J, 4), take_start (T+1,), take_ids (T,)

A take is one performer: a session whose points hold several people (issue 15) is refused with a message
(the build records it as failed and goes on with the others). All takes share one keypoint set and one
skeleton (/index stacks them): a take of another is recorded as failed with a message naming both
(:mod:`mocap.dataset.compat`), and the others are committed. A session given twice (another path, a link:
the same take id) is built once.

Every per-take dataset is chunked along frames and compressed; /index is contiguous (memory-mapped
by the reader).

The file is never changed in place (see :mod:`mocap.dataset.store`): during a build, complete takes
wait as ``<file>.pending/<id>.h5`` and events in ``<file>.pending/events.jsonl`` (fsynced); a commit
writes the whole new file under a temporary name and renames it over the old one. A ``kill -9`` at
any instant leaves the last committed file, and the next build picks up the waiting takes.
"""

KIND = "mocap-dataset"
SCHEMA_VERSION = 1
