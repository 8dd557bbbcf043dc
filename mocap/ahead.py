"""Work ``mocap run`` starts ahead of the stage that needs it, so that it runs while other stages do.

* The export's Blender child (:func:`mocap.io.blender.warm`): started once a stage after calibration and
  before the export has run, when the export will write through Blender (GLB, or FBX with
  ``export.fbx_writer = "blender"``; the native FBX writer needs no child). So it loads bpy (about 1 s of CPU)
  after detection, not during it: detection keeps every core busy, the stages after it mostly one, and
  by the export stage the child waits for its job on a pipe. Earlier when a core is free: detection
  calls :func:`core_free` once its last chunks no longer keep every worker busy (its idle tail, 0.7-3.8 s
  on the demo), and the child then loads on that idle core instead of beside the stages after detection.
* The report's overlay videos (:func:`mocap.report.prestart`): started once the 3D points are final
  (after the refine stage, when a stage ran), when the report makes videos; they render in threads while
  the fit, the retarget, the export and the report's page are made, and the report stage waits for them.

Everything started ends with the run: the Blender child after its export, or killed (unused, or on an
error or a Ctrl-C: no child outlives the run); the overlay renders joined by the report stage (or at
the end, with their progress), or stopped on an error or a Ctrl-C.
"""

from __future__ import annotations

import logging
import weakref

log = logging.getLogger(__name__)
OVERLAYS_AFTER = "refine"  # the last stage whose outputs the overlay videos show


class Ahead:
    """What a run started ahead; :meth:`after` is told each stage's status, :meth:`close` ends it all."""

    def __init__(self, session, settings, names: list[str]):
        from mocap.io.blender import needs_blender

        self.session, self.settings, self.names = session, settings, names
        self.blender = "export" in names and needs_blender(settings.export.formats, settings.export.fbx_writer)
        self.overlays = "report" in names and OVERLAYS_AFTER in names and settings.report.overlay_videos
        self.ran = False
        self._first_after_calibration = names.index("calibrate") + 1 if "calibrate" in names else 0
        self.videos = None  # mocap.report.overlay.Pending
        _running.add(self)

    def core_free(self) -> None:
        """A stage no longer keeps every core busy (detection's last chunks): start the Blender child now."""
        if self.blender:
            self._start_blender("on a core detection no longer uses")

    def after(self, name: str, status: str) -> None:
        self.ran |= status == "ran"
        i = self.names.index(name)
        # not after calibrate: detection follows it, keeping every core busy (bpy would load during it)
        if self.blender and status == "ran" and self.names.index("export") > i >= self._first_after_calibration:
            self._start_blender("while the stages before it run")
        if self.overlays and name == OVERLAYS_AFTER:
            self.overlays = False
            if self.ran:
                self._start_overlays()

    def _start_blender(self, when: str) -> None:
        """Start the export's Blender child now (once). One that cannot start (Popen's OSError) is a warning:
        not the failure of the stage running, the export starts its own child (and says why it cannot)."""
        from mocap.io import blender

        self.blender = False
        try:
            started = blender.warm() is not None
        except OSError as e:
            log.warning("the Blender child for the export could not start ahead (%s); the export starts it", e)
            return
        if started:
            log.info("Blender started for the export, %s", when)

    def _start_overlays(self) -> None:
        from mocap import report

        try:
            self.videos = report.prestart(self.session, self.settings.report)
        except (FileNotFoundError, ValueError, OSError) as e:  # the report stage meets it again, and says so
            log.debug("overlay videos not started ahead: %s", e)
            return
        if self.videos is not None and self.videos.jobs:
            log.info("overlay videos: %d rendering while the next stages run", len(self.videos.jobs))

    def close(self, failed: bool) -> None:
        """End everything: at once when ``failed`` (an error or a Ctrl-C), else once the renders are done."""
        from mocap.io import blender

        _running.discard(self)
        blender.release()
        videos, self.videos = self.videos, None
        if videos is None:
            return
        if failed:
            videos.cancel()
        else:
            videos.result()


_running: weakref.WeakSet[Ahead] = weakref.WeakSet()  # the runs in progress in this process (one, usually)


def core_free() -> None:
    """Called by a stage whose work no longer keeps every core busy (detection once a pool worker has no chunk
    left): the runs in progress start what they keep for a free core. Nothing when no run is in progress."""
    for a in list(_running):
        a.core_free()
