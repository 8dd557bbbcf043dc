"""Several people: which associated person the stages before triangulation use, and the per-person quality
rules of the final triangulation (synthetic arrays, fast)."""

from __future__ import annotations

import numpy as np

from mocap.multi.slots import best_person


def _slots(views_per_frame: list[list[int]], C: int = 4) -> np.ndarray:
    """(F, C, P) slots from, per person, the number of views it is seen by in each frame."""
    F, P = len(views_per_frame[0]), len(views_per_frame)
    slots = np.full((F, C, P), -1, np.int16)
    for p, counts in enumerate(views_per_frame):
        for f, n in enumerate(counts):
            slots[f, :n, p] = p
    return slots


def test_best_person_prefers_frames_then_views_then_agreement():
    # both seen in every frame: the one seen by more views (its detections not lost behind the other)
    slots = _slots([[2, 3, 2, 3, 2], [4, 4, 4, 4, 4]])
    people = [{"track_cost_mm": 20.0}, {"track_cost_mm": 40.0}]
    assert best_person(slots, people) == 1
    # more frames in two views or more beat more views in fewer frames; one view alone does not count
    slots = _slots([[1, 1, 4, 4, 4], [2, 2, 2, 2, 0]])
    assert best_person(slots, people) == 1
    # the same evidence: the lower track cost (detections agreeing best across the views)
    slots = _slots([[3, 3, 3], [3, 3, 3]])
    assert best_person(slots, [{"track_cost_mm": 50.0}, {"track_cost_mm": 30.0}]) == 1
    assert best_person(slots, [{"track_cost_mm": None}, {"track_cost_mm": 30.0}]) == 1
    assert best_person(slots, [{"track_cost_mm": 30.0}, {"track_cost_mm": 30.0}]) == 0  # a tie: the first
