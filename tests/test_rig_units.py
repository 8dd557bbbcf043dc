"""A rig calibrated in millimetres or centimetres (Anipose, FreeMoCap: the board's unit) is refused before the
stages that triangulate, with the unit and the command that converts it; the converted rig runs as the metric one."""

import numpy as np
import pytest
from pipeline_synth import synthetic_session

from mocap.cli import main as cli
from mocap.geometry.align import with_similarity
from mocap.geometry.units import likely_unit
from mocap.io.rig_files import read_rig, write_rig
from mocap.session import Session
from mocap.stages import rig_refine, triangulate
from mocap.stages.rig_units import check_rig_units


def test_the_performer_says_the_unit():
    assert likely_unit(1.3, 1.25) == "m" and likely_unit(0.6, 1.25) == "m"  # a child, or crouching
    assert likely_unit(131.0, 1.25) == "cm" and likely_unit(1190.0, 1.25) == "mm"
    assert likely_unit(12.0, 1.25) is None  # between two units: nothing said


def _scaled(session, factor: float) -> Session:
    s = Session(session)
    path = s.rig_path()
    write_rig(with_similarity(read_rig(path), np.zeros((0, 3)), factor, np.eye(3), np.zeros(3))[0], path)
    return s


@pytest.mark.parametrize(("factor", "unit", "name"), [(1000.0, "mm", "millimetres"), (100.0, "cm", "centimetres")])
def test_a_rig_in_mm_or_cm_is_refused_with_the_command_that_converts_it(tmp_path, capsys, factor, unit, name):
    s = _scaled(synthetic_session(tmp_path / "take", frames=60), factor)
    with pytest.raises(ValueError, match=rf"the rig looks like it is in {name}, not metres: the performer measures "
                                         rf".* of its units from shoulders to ankles .* mocap calibration units "
                                         rf"{s.root} {unit} "):
        rig_refine.main(s)
    with pytest.raises(ValueError, match=f"in {name}, not metres"):
        triangulate.main(s)
    assert cli(["calibration", "units", str(s.root), unit]) == 0
    assert (s.calibration_dir / f"rig.toml.{unit}.orig").is_file()  # the user's file kept
    rig = s.rig()
    check_rig_units(rig, s.keypoints2d(rig), s.rig_path(), s.root)  # metres now: no error
    assert triangulate.main(s).is_file()
    reference = Session(synthetic_session(tmp_path / "metric", frames=60)).rig()
    assert np.allclose([c.center for c in rig.cameras], [c.center for c in reference.cameras], atol=1e-9)
    assert cli(["calibration", "units", str(tmp_path / "nowhere"), "mm"]) == 2
    assert "nowhere does not exist" in capsys.readouterr().err


def test_without_a_performer_to_measure_the_cameras_spread_says_it(tmp_path):
    """Several detection slots (no single performer before association): cameras 5,000 units from their centre are
    no rig in metres."""
    s = _scaled(synthetic_session(tmp_path / "take", frames=30), 1000.0)
    rig = s.rig()
    kp = s.keypoints2d(rig)
    two = type(kp)(np.concatenate([kp.data, kp.data], axis=2), kp.camera_names, kp.keypoint_set, kp.fps)
    with pytest.raises(ValueError, match=r"in millimetres, not metres: its cameras stand .* of its units from their "
                                         r"centre"):
        check_rig_units(rig, two, s.rig_path(), s.root)
    metric = Session(synthetic_session(tmp_path / "metric", frames=30))
    check_rig_units(metric.rig(), two, metric.rig_path(), metric.root)


def test_a_rig_in_metres_is_not_converted_and_a_rig_a_thousand_times_off_is_refused(tmp_path, capsys):
    """`mocap calibration units SESSION mm` on a rig already in metres divided it by 1,000, and the run that
    followed accepted it (the performer 1.3 mm tall: no unit fits, so nothing was said); a second conversion
    overwrote the kept original."""
    s = Session(synthetic_session(tmp_path / "take", frames=60))
    before = s.rig_path().read_text()
    assert cli(["calibration", "units", str(s.root), "mm"]) == 2
    assert "rig.toml: not in mm: the performer measures 1.2" in capsys.readouterr().err
    assert s.rig_path().read_text() == before and not (s.calibration_dir / "rig.toml.mm.orig").exists()
    _scaled(s.root, 0.001)  # as that conversion left it
    with pytest.raises(ValueError, match=r"the rig's scale is off: the performer measures 0.001.* of its units from "
                                         r"shoulders to ankles \(an adult: about 1.25 m\), 0.001.* times that"):
        triangulate.main(s)
    mm = _scaled(synthetic_session(tmp_path / "mm", frames=60), 1000.0)
    original = mm.rig_path().read_text()
    assert cli(["calibration", "units", str(mm.root), "mm"]) == 0
    assert cli(["calibration", "units", str(mm.root), "mm"]) == 2  # converted already: refused, the original kept
    assert (mm.calibration_dir / "rig.toml.mm.orig").read_text() == original


def test_without_keypoints_the_cameras_spread_checks_a_conversion(tmp_path):
    from mocap.stages.rig_units import convert_rig

    s = Session(synthetic_session(tmp_path / "take", frames=30))
    s.pose2d_h5.unlink()
    with pytest.raises(ValueError, match=r"not in mm: its cameras stand .* of its units from their centre, .* m "
                                         r"converted \(already in metres\?\)"):
        convert_rig(s, "mm")


def test_an_anipose_file_in_centimetres_is_named_and_converts(tmp_path):
    """An Anipose / Pose2Sim calibration.toml in cm (cameras ~300 units away) is read as millimetres (over 50):
    the performer a tenth of an adult; the error blamed a board square size, and `calibration units SESSION cm`
    refused ("not in cm"): no way out but editing the file."""
    from mocap.io.rig_files import write_anipose_toml

    s = Session(synthetic_session(tmp_path / "take", frames=60))
    rig = read_rig(s.rig_path())
    s.rig_path().unlink()
    write_anipose_toml(rig, s.calibration_dir / "calibration.toml", "cm")
    with pytest.raises(ValueError, match=r"the rig's scale is off: .* about a tenth: an Anipose / Pose2Sim file in "
                                         rf"centimetres, read as millimetres .*mocap calibration units {s.root} cm"):
        triangulate.main(s)
    assert cli(["calibration", "units", str(s.root), "cm"]) == 0
    converted = s.rig()
    check_rig_units(converted, s.keypoints2d(converted), s.rig_path(), s.root)
    assert np.allclose([c.center for c in converted.cameras], [c.center for c in rig.cameras], atol=1e-6)
