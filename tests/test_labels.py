"""Camera names drawn on images (mocap view, the report's videos, mocap live) come out readable: OpenCV's fonts
draw ASCII only, and "kaméra 2" came out "kam??ra 2" (from the new-user helper)."""

import numpy as np

from mocap.labels import drawable


def test_accents_are_dropped_and_other_letters_are_marked():
    assert drawable("kaméra 2") == "kamera 2"
    assert drawable("kame\u0301ra 2") == "kamera 2"  # the same name, decomposed (NFD)
    assert drawable("相机三") == "???"
    assert drawable("cam01 frame 3") == "cam01 frame 3"


def test_the_view_draws_a_unicode_name_as_its_ascii_letters():
    from mocap.view.render import text

    named, plain = np.zeros((60, 300, 3), np.uint8), np.zeros((60, 300, 3), np.uint8)
    text(named, "kaméra 2", (10, 40), 1.0)
    text(plain, "kamera 2", (10, 40), 1.0)
    assert named.any() and np.array_equal(named, plain)
