"""Several people in the volume: cross-view association per frame and 3D tracking over time.

:func:`mocap.multi.track.associate_take` turns per-view detector slots (which do not correspond across
cameras or over time) into identities: ``slots[f, c, p]`` is the detector slot of camera ``c`` that
holds person ``p`` in frame ``f`` (-1: not seen there). :func:`mocap.multi.slots.apply_slots` reorders
the keypoints so the persons axis is the identity in every view and frame.
"""
