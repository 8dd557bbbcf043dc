"""mocap bench after: detection's pool workers end in the background and are reaped during the stage after it;
their CPU is counted for detection, not for that stage (it made rig_refine look like 14 CPU s)."""

import os
import subprocess
import sys

from mocap import pipeline
from mocap.bench.after import _workers_cpu_to_detection


def stages(detect="ran"):
    return [{"stage": "calibrate", "status": "not needed", "wall_s": 0.0, "cpu_s": None},
            {"stage": "detect", "status": detect, "wall_s": 8.0, "cpu_s": 0.2},
            {"stage": "rig_refine", "status": "skipped", "wall_s": 0.0, "cpu_s": None},
            {"stage": "sync", "status": "ran", "wall_s": 0.1, "cpu_s": 14.1},
            {"stage": "triangulate", "status": "ran", "wall_s": 0.05, "cpu_s": 0.05}]


def test_the_workers_cpu_goes_back_to_detection():
    st = stages()
    _workers_cpu_to_detection(st, {"detect": 0.0, "sync": 14.0, "triangulate": 0.01})
    by = {s["stage"]: s for s in st}
    assert abs(by["sync"]["cpu_s"] - 0.1) < 1e-9 and abs(by["detect"]["cpu_s"] - 14.2) < 1e-9
    assert by["detect"]["workers_reaped_cpu_s"] == 14.0
    assert by["triangulate"]["cpu_s"] == 0.05  # only the first stage that ran after detection


def test_nothing_moves_without_a_detection():
    st = stages(detect="skipped")
    _workers_cpu_to_detection(st, {"sync": 3.0})
    assert [s["cpu_s"] for s in st] == [s["cpu_s"] for s in stages(detect="skipped")]


def test_the_run_records_its_children_cpu():
    before = pipeline._children_cpu_s()
    subprocess.run([sys.executable, "-c", "sum(i * i for i in range(2_000_000))"], check=True,
                   env=dict(os.environ))
    assert pipeline._children_cpu_s() > before
    assert pipeline.RunResult(session=".").cpu_children == {}


def test_a_figure_s_own_wall_and_cpu_are_kept_beside_the_process_s():
    """``mocap live --json``: the summary's CPU of its loop was replaced by the whole process's (16.7 s where the
    printed line said 15.1); a result's own wall_s and cpu_s stay, the process's beside them."""
    from mocap.bench.common import with_run_record

    out = with_run_record({"cpu_s": 1.5, "wall_s": 2.0, "cores": 1})
    assert out["cpu_s"] == 1.5 and out["wall_s"] == 2.0 and out["cores"] == 1
    assert out["process_cpu_s"] >= 0 and out["process_wall_s"] > 0
    plain = with_run_record({"x": 1})
    assert "cpu_s" in plain and "process_cpu_s" not in plain
