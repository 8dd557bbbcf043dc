"""The embedded rendered sample (mocap/samples/rendered): the whole pipeline from pixels, on a fresh clone
with no other data, against the sample's ground truth."""

import pytest

from mocap.demo import SAMPLE

pytestmark = pytest.mark.skipif(not (SAMPLE / "calibration" / "board").is_dir(),
                                reason="this checkout has no embedded sample session")


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    from mocap.bench.e2e import E2EConfig, run

    return run(E2EConfig(str(SAMPLE), str(tmp_path_factory.mktemp("sample") / "work")))


@pytest.mark.slow
def test_sample_from_pixels_accuracy(e2e):
    assert e2e["timings_s"]["calibrate"] > 0 and e2e["timings_s"]["detect"] > 0  # calibrated and detected here
    c = e2e["calibration_summary"]
    assert c["centre_mm"] < 6 and c["rotation_deg"] < 0.45 and c["focal_pct"] < 0.5, c  # measured 2.3, 0.29, 0.13
    assert e2e["detected_frames"] > 0.95
    # measured 24.8 / 30.1 mm, 5.3° (see README), asserted with a margin against regressions: the targets once set
    # (bias-corrected ≤ 25 mm, joint angles ≤ 5°) are not what this checks, and the angles' is missed
    assert e2e["mpjpe_bias_corrected_mm"] <= 27.0, e2e["mpjpe_bias_corrected_mm"]
    assert e2e["mpjpe_raw_mm"] <= 40.0, e2e["mpjpe_raw_mm"]
    assert e2e["joint_angle_deg_median"] <= 6.0, e2e["joint_angle_deg_median"]
    assert e2e["reprojection_px_median"] < 4.0


def test_sample_is_small_enough_to_ship():
    size = sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file())
    assert size < 10e6, size
