"""Warnings on an association's summary (:func:`mocap.multi.track.associate_take`), also said again when a
memoised association is reused (:mod:`mocap.multi.memo`)."""

from __future__ import annotations

import logging

log = logging.getLogger("mocap.multi.track")  # the association's warnings, as they always were


def warn_summary(summary: dict) -> None:
    """Warnings on an association (``summary``: :func:`associate_take`'s): cameras with many detections no person
    explains, fewer or more people than requested, short tracks dropped."""
    many = {k: n for k, n in summary["unexplained_frames_per_camera"].items() if n > 0.05 * summary["frames"]}
    if many:  # one line for them all (a 12-camera take with reflections and clutter said it 12 times)
        one = len(many) == 1
        log.warning("%s %s with a detection no person explains (a person seen by %s alone, beyond the capture volume, "
                    "or not a person): not reconstructed", "camera" if one else "cameras",
                    ", ".join(f"{k} ({n} frames)" for k, n in many.items()), "this camera" if one else "one camera")
    requested, found = summary["persons_requested"], summary["persons_found"]
    stitched = [(p, q["stitched"]) for p, q in enumerate(summary["people"]) if q.get("stitched")]
    if requested != "auto" and found < requested:
        log.warning("%d people requested but %d found in the views (fewer tracks%s)", requested, found,
                    f"; {sum(len(s) for _, s in stitched)} lost and taken up again where they were lost, the same "
                    "body size: someone of that size entering where another left is taken for the same person"
                    if stitched else "")
    for p, spans in stitched:
        log.warning("identity %d lost and taken up again %s, where it was lost and with the same body size "
                    "(association.stitch_max_s): if another person of that size came in there, two people are this "
                    "one identity", p + 1, ", ".join(f"frames {a}-{b}" for a, b in spans))
    if requested != "auto" and found > requested:  # at_once: the most people seen together
        spans = [(q["first"], q["last"]) for q in summary["people"] if q.get("first") is not None]
        at_once = max((sum(a <= f <= b for a, b in spans) for f, _ in spans), default=0)
        log.warning("%d people requested but %d identities found (%s)", requested, found, f"up to {at_once} at once: "
                    "more people in the volume than detect.persons, or something followed as one" if at_once > requested
                    else f"never more than {requested} at once, but bodies of another size: people entering after "
                    "others left, not joined into one identity")
    if summary["tracks_dropped_short"]:
        log.warning("%d short tracks (< %d frames in two views) dropped", summary["tracks_dropped_short"],
                    summary["config"]["min_person_frames"])
