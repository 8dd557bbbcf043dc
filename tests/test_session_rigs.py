"""Several calibration files in calibration/: the one used is said, with the others (an old calibration.toml beat
a new Calib_2026-12-05.qca.txt, unsaid: the stage table's "rig given (calibration.toml)" was the only sign)."""

import logging

from mocap.session import Session


def test_other_rig_files_are_named_and_companions_are_not(tmp_path, caplog):
    cal = tmp_path / "S" / "calibration"
    cal.mkdir(parents=True)
    for name in ("calibration.toml", "Calib_2026-12-05.qca.txt"):
        (cal / name).write_text("x")
    with caplog.at_level(logging.WARNING, logger="mocap.session"):
        assert Session(tmp_path / "S").rig_path() == cal / "calibration.toml"
    assert "several calibration files: calibration.toml is used" in caplog.text
    assert "not Calib_2026-12-05.qca.txt; keep one" in caplog.text
    caplog.clear()
    quiet = tmp_path / "Q" / "calibration"
    quiet.mkdir(parents=True)
    for name in ("rig.toml", "calibration.toml"):  # this project's rig and its Anipose copy: one rig
        (quiet / name).write_text("x")
    (tmp_path / "E" / "calibration").mkdir(parents=True)
    for name in ("intri.yml", "extri.yml"):  # EasyMocap's pair: one rig
        (tmp_path / "E" / "calibration" / name).write_text("x")
    with caplog.at_level(logging.WARNING, logger="mocap.session"):
        assert Session(tmp_path / "Q").rig_path().name == "rig.toml"
        assert Session(tmp_path / "E").rig_path().name == "intri.yml"
    assert "several calibration files" not in caplog.text
