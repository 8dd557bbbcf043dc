"""The live loop: per camera a reader (:mod:`mocap.live.sources`), one detection worker per core, one
fusion thread.

A free worker takes the camera that waits longest for its turn (every camera gets its share) and detects
that camera's freshest frame: the queue holds two frames and drops the oldest, and older frames are
dropped when the worker gets to it, so a slow detector skips frames instead of falling behind (skipped
frames are counted); one camera's detector never runs twice at once (its tracking needs its frames in
order). The worker hands the
2D keypoints to the fusion thread. Fusion keeps each camera's latest detection; once every running
camera has a new one (or after two frame periods), it triangulates the cameras whose detections lie
within ``sync_frames`` frame periods of the newest with the rig (robust DLT, the pipeline's
:func:`mocap.geometry.triangulation.triangulate`) and publishes a 3D update; with ``persons`` > 1 the detections
are first grouped into people across the cameras and each person keeps a number (:mod:`mocap.live.people`).
Latency of an update: the time from the exposure of the oldest frame it used to its publication. A camera that
stops (or sends nothing for ``stall_s``: a stream hung in its read, or one that never sent a frame, counted from
playback's start) leaves the fusion and is reported; live goes on with the others, and a stalled camera rejoins
with its next frame.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from mocap.live.sources import LatestQueue, Source

log = logging.getLogger(__name__)
SCAN_EVERY = 15  # several people: each camera's detector looks for new people every this many of its frames


@dataclass(frozen=True)
class LiveConfig:
    detector: str = "blazepose"
    variant: str = "full"  # the fast model: lite when its file is given (model_path); full is what mediapipe ships
    model_path: str = ""
    min_score: float = 0.5  # keypoints below this visibility / score are not triangulated
    max_reproj_px: float = 25.0  # views further off than this are left out of a point (camera-subset search)
    queue: int = 2  # frames kept per camera before the oldest is dropped
    stall_s: float = 1.0  # a camera silent this long leaves the fusion (and is reported)
    sync_frames: float = 1.5  # detections within this many frame periods of the newest are fused
    workers: int = 0  # detections running at once (0: one per core); the others wait for the CPU
    persons: int = 1  # people followed: each camera detects up to this many, grouped across cameras (live.people)

    def __post_init__(self) -> None:
        if self.queue < 1 or self.stall_s <= 0 or self.sync_frames <= 0 or not 0 <= self.min_score <= 1:
            raise ValueError(f"live: need queue ≥ 1, stall_s > 0, sync_frames > 0 and 0 ≤ min_score ≤ 1, got "
                             f"{self.queue}, {self.stall_s}, {self.sync_frames}, {self.min_score}")
        if isinstance(self.persons, bool) or not isinstance(self.persons, int) or self.persons < 1:
            raise ValueError(f"live: persons must be a whole number ≥ 1 (the people to follow; offline's 'auto' "
                             f"counts them over the whole take), got {self.persons!r}")


def _detector(cfg: LiveConfig, get_detector):
    """One camera's detector: with several people, BlazePose follows the people it has and looks for new ones
    every :data:`SCAN_EVERY` frames (:class:`mocap.detect.scan.ScanningPose`: its several-pose mode otherwise runs
    its person detector on every frame with fewer people than ``persons``: 13.1 against 19.5 updates/s on one
    person, 4 cameras at 640×480 on 2 cores)."""
    if cfg.persons > 1 and cfg.detector == "blazepose":
        from mocap.detect.scan import ScanningPose

        return ScanningPose(cfg.variant, cfg.model_path or None, num_poses=cfg.persons, scan_every=SCAN_EVERY)
    return get_detector(cfg.detector, variant=cfg.variant, model_path=cfg.model_path or None, num_poses=cfg.persons)


@dataclass
class Update:
    points: np.ndarray  # (J, 3) world, NaN where unseen (several people: the lowest-numbered one's)
    error_px: np.ndarray  # (J,)
    cameras: list[int]  # cameras fused
    t_glass: float  # exposure of the oldest frame used
    t_published: float
    frame_index: dict[int, int]  # camera → frame index used
    people: np.ndarray | None = None  # (P, J, 3) with ``persons`` > 1: every person found, by number
    numbers: list[int] = field(default_factory=list)  # (P,) their numbers ("person N", kept from update to update)
    seen_by: list[int] = field(default_factory=list)  # (P,) the cameras each one's points use


@dataclass
class CameraStats:
    name: str
    detected: int = 0
    found: int = 0  # frames with a person
    failed: int = 0  # detections that raised (logged, frame dropped)
    last_t: float | None = None
    recent: deque = field(default_factory=lambda: deque(maxlen=60))  # person found, last detections
    people: deque = field(default_factory=lambda: deque(maxlen=60))  # people detected, last detections


class LiveEngine:
    def __init__(self, rig, sources: dict[str, str | int], cfg: LiveConfig = LiveConfig(), realtime: bool = False,
                 loop: bool = False, recorder=None, stop_after: dict[str, float] | None = None):
        from mocap.detect import get_detector
        from mocap.keypoint_sets import get_keypoint_set

        self.rig, self.cfg = rig, cfg
        self.names = list(sources)
        self.index = [rig.names.index(n) for n in self.names]  # source → rig camera
        self.t0 = time.monotonic() + 0.5  # playback starts once every thread is up (set again by start)
        self.queues = [LatestQueue(cfg.queue) for _ in self.names]
        self.sources = [Source(i, n, sources[n], self.queues[i], realtime, self.t0, loop, recorder,
                               (stop_after or {}).get(n)) for i, n in enumerate(self.names)]
        self.detectors = [_detector(cfg, get_detector) for _ in self.names]
        self.keypoints = get_keypoint_set(self.detectors[0].keypoint_set)
        from mocap.live.people import LimbLengths

        self.lengths = LimbLengths(self.keypoints.limbs, len(self.keypoints.joints))  # one person: its limbs
        self.people = None
        if cfg.persons > 1:
            from mocap.live.people import LivePeople

            self.people = LivePeople(rig, self.keypoints.name, cfg.persons, cfg.min_score, cfg.max_reproj_px)
        self.numbers_seen: set[int] = set()  # every person number shown
        self.people_most = 0  # the most people in one update
        self.stats = [CameraStats(n) for n in self.names]
        self.results = LatestQueue(4 * len(self.names))
        self.halt = threading.Event()
        self.lock = threading.Lock()
        self.sched = threading.Condition()  # picks the camera to detect next (see _next_camera)
        self.busy: set[int] = set()
        self.silent: set[int] = set()  # running cameras left out of the fusion (nothing for stall_s)
        self.last_start = [0.0] * len(self.names)
        self.last_ms = [-1] * len(self.names)  # each detector's last timestamp
        for q in self.queues:
            q.on_put = self._wake
        self.latest_update: Update | None = None
        self.updates = 0
        self.first_update: float | None = None
        self.last_update_t: float | None = None
        self.latencies: deque = deque(maxlen=100_000)
        n_workers = min(cfg.workers or os.cpu_count() or 1, len(self.names))
        self.threads = [threading.Thread(target=self._detect, daemon=True, name=f"detect-{k}")
                        for k in range(n_workers)]
        self.threads.append(threading.Thread(target=self._fuse, daemon=True, name="fusion"))

    # ----- threads ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Playback's clock starts here, not when the engine was made: making the detectors takes seconds on a
        busy machine, and a file's frames due meanwhile were all late (their latency counted from then)."""
        self.t0 = time.monotonic() + 0.5
        for s in self.sources:
            s.t0 = self.t0
        for t in self.threads + self.sources:
            t.start()

    def stop(self) -> None:
        self.halt.set()
        for s in self.sources:
            s.halt.set()
        for q in self.queues:
            q.close()
        self._wake()
        for t in self.sources + self.threads:
            t.join(timeout=5)
        if any(t.is_alive() for t in self.threads):  # a worker still inside its detector: closing it would crash
            log.warning("live: a detection worker did not stop within 5 s; its detector is left to the process exit")
            return
        for d in self.detectors:
            d.close()

    def running(self) -> bool:
        return any(s.is_alive() for s in self.sources) or any(len(q) for q in self.queues)

    def _wake(self) -> None:
        with self.sched:
            self.sched.notify()

    def _next_camera(self) -> int | None:
        """The camera to detect next: of those with a frame waiting and no detection running, the one whose
        last detection started longest ago (every camera gets its turn); None when all sources are done."""
        with self.sched:
            while not self.halt.is_set():
                ready = [i for i, q in enumerate(self.queues) if len(q) and i not in self.busy]
                if ready:
                    i = min(ready, key=lambda k: self.last_start[k])
                    self.busy.add(i)
                    self.last_start[i] = time.monotonic()
                    return i
                if all(q.closed for q in self.queues) and not any(len(q) for q in self.queues):
                    return None
                self.sched.wait(timeout=0.1)
        return None

    def _detect(self) -> None:
        """A detection worker (one per core): the chosen camera's freshest frame, older ones dropped."""
        while (i := self._next_camera()) is not None:
            try:
                frame = self.queues[i].get_latest(timeout=0)
                if frame is None:
                    continue
                ms = max(int(round((frame.t_glass - self.t0) * 1000)), self.last_ms[i] + 1)  # strictly increasing
                self.last_ms[i] = ms
                poses = self.detectors[i](frame.image, ms)
                J = len(self.keypoints.joints)  # several people: (S, J, 3), none found (an empty list) is (0, J, 3)
                kp = poses[0] if self.people is None else np.asarray(poses, float).reshape(-1, J, 3)[:self.cfg.persons]
                found = bool(np.isfinite(kp[..., 0]).any())
                people = int(np.isfinite(kp[..., 0]).any(axis=-1).sum()) if kp.ndim == 3 else int(found)
            except Exception:  # noqa: BLE001 - one bad frame must not stop this worker (and the preview)
                log.exception("live: detection failed on camera %s; the frame is dropped", self.names[i])
                with self.lock:
                    self.stats[i].failed += 1
                continue
            finally:
                with self.sched:
                    self.busy.discard(i)
                    self.sched.notify_all()
            st = self.stats[i]
            with self.lock:
                st.detected += 1
                st.found += found
                st.recent.append(found)
                st.people.append(people)
                st.last_t = time.monotonic()
            self.results.put((i, frame.index, frame.t_glass, kp))

    def _silent_s(self, s: Source, now: float) -> float:
        """How long a running source has sent nothing: since its last frame, or since playback's start when it
        never delivered (a stream that opened, or is still opening, and hangs in its read)."""
        return now - (s.last_frame_t if s.last_frame_t is not None else self.t0)

    def _active(self, now: float) -> set[int]:
        """The cameras the fusion waits for: those running that delivered within ``stall_s`` (one silent longer
        leaves the fusion, and rejoins with its next frame), and those that ended while their last frames are
        still being detected."""
        active = set()
        for i, (s, st) in enumerate(zip(self.sources, self.stats, strict=True)):
            if s.ended is None:
                if self._silent_s(s, now) < self.cfg.stall_s:
                    active.add(i)
            elif st.last_t is not None and now - st.last_t < self.cfg.stall_s and len(self.queues[i]):
                active.add(i)
        silent = {i for i, s in enumerate(self.sources) if s.ended is None and i not in active}
        for i in sorted(silent - self.silent):
            log.warning("camera %s sent nothing for %.1f s: left out of the 3D until it sends again",
                        self.names[i], self._silent_s(self.sources[i], now))
        for i in sorted(self.silent - silent):
            if self.sources[i].ended is None:
                log.info("camera %s sends again: back in the 3D", self.names[i])
        self.silent = silent
        return active

    def _fuse(self) -> None:
        latest: dict[int, tuple[int, float, np.ndarray]] = {}
        fresh: set[int] = set()
        first_fresh: float | None = None
        while not self.halt.is_set():
            period = 1.0 / max(next((s.fps for s in self.sources if s.fps), 30.0), 1.0)  # known once opened
            item = self.results.get(timeout=period)
            now = time.monotonic()
            if item is not None:
                i, index, t, kp = item
                latest[i] = (index, t, kp)
                fresh.add(i)
                first_fresh = first_fresh or now
            elif self.results.closed:
                return
            if not fresh:
                continue
            active = self._active(now) | fresh
            if not (active <= fresh or now - first_fresh > 2 * period):
                continue
            newest = max(latest[i][1] for i in fresh)
            use = sorted(i for i, (_, t, _) in latest.items()
                         if newest - t <= self.cfg.sync_frames * period and (i in active))
            fresh, first_fresh = set(), None
            if len(use) >= 2:
                try:
                    self._publish(use, latest)
                except Exception:  # noqa: BLE001 - one bad update must not stop the fusion (the preview would freeze)
                    log.exception("live: the 3D update of cameras %s failed; skipped", [self.names[i] for i in use])

    def _publish(self, use: list[int], latest: dict) -> None:
        from mocap.geometry.triangulation import triangulate

        J, C = len(self.keypoints.joints), len(self.rig)
        t_glass = min(latest[i][1] for i in use)
        people, numbers, seen_by = None, [], []
        if self.people is not None:  # several people: grouped across the cameras, each triangulated
            people, errors, numbers, seen_by = self.people.fuse({self.index[i]: latest[i][2] for i in use}, t_glass)
            X = people[0] if len(people) else np.full((J, 3), np.nan)
            err = errors[0] if len(people) else np.full(J, np.nan)
        else:
            uv = np.full((J, C, 2), np.nan)
            w = np.zeros((J, C))
            for i in use:
                kp = latest[i][2]
                ok = np.isfinite(kp[:, 0]) & (kp[:, 2] >= self.cfg.min_score)
                uv[ok, self.index[i]] = kp[ok, :2]
                w[ok, self.index[i]] = kp[ok, 2]
            X, err, _ = triangulate(self.rig, uv, w, max_reproj_px=self.cfg.max_reproj_px)
            X = self.lengths.held(X)  # this person's recent limbs (the fusion thread's alone)
            err = np.where(np.isfinite(X[:, 0]), err, np.nan)
        now = time.monotonic()
        update = Update(X, err, [self.index[i] for i in use], t_glass, now, {i: latest[i][0] for i in use}, people,
                        numbers, seen_by)
        with self.lock:
            self.numbers_seen.update(numbers)
            self.people_most = max(self.people_most, len(numbers))
            self.latest_update = update
            self.updates += 1
            self.first_update = self.first_update or now
            self.last_update_t = now
            self.latencies.append(now - t_glass)

    # ----- reporting -------------------------------------------------------------------------------
    def health(self) -> list[dict]:
        """Per camera: frames read, detected, dropped (never detected), person found, state."""
        now = time.monotonic()
        rows = []
        with self.lock:
            for i, (s, st, q) in enumerate(zip(self.sources, self.stats, self.queues, strict=True)):
                state = "running"
                if s.ended and not s.frames:  # it never delivered (a device index that does not exist)
                    state = f"no frame: {s.ended}"
                elif s.ended:  # stopped while another camera went on: mid-take (reported); else the take's end
                    after = s.ended_at + 2.0 / (s.fps or 30.0)
                    early = any(o is not s and self._went_on(o, after, now) for o in self.sources)
                    state = f"{'stopped mid-take' if early else 'ended'}: {s.ended}"
                elif (silent := self._silent_s(s, now)) > self.cfg.stall_s:  # a hung read: alive, sends nothing
                    state = (f"stalled ({silent:.1f} s without a frame)" if s.frames else
                             f"stalled (no frame since the start, {silent:.1f} s)")
                elif s.frames and st.last_t is not None and now - st.last_t > self.cfg.stall_s:
                    state = f"stalled ({now - st.last_t:.1f} s without a detection)"
                rows.append({"camera": self.names[i], "read": s.frames, "detected": st.detected, "failed": st.failed,
                             "dropped": q.dropped, "found": st.found / st.detected if st.detected else 0.0,
                             "recent_found": float(np.mean(st.recent)) if st.recent else 0.0, "state": state,
                             # several people: the lower median of the people it detected (a whole number)
                             **({"recent_people": sorted(st.people)[(len(st.people) - 1) // 2] if st.people else 0}
                                if self.people is not None else {}),
                             "late_s": s.late_s})
        return rows

    def _went_on(self, o: Source, after: float, now: float) -> bool:
        """Whether source ``o`` delivered past ``after`` (take time): it ended later, it still runs, or it stalled
        after that; a camera that never delivered does not count."""
        if not o.frames:
            return False
        if o.ended is not None:
            return o.ended_at > after
        if self._silent_s(o, now) <= self.cfg.stall_s:
            return True
        return o.delivered_until() > after

    def summary(self) -> dict:
        with self.lock:
            lat = np.array(self.latencies) if self.latencies else np.array([np.nan])
            span = (self.last_update_t - self.first_update) if self.updates > 1 else 0.0
            rate = (self.updates - 1) / span if span > 0 else 0.0
            people = {} if self.people is None else {"persons": self.cfg.persons, "people_most": self.people_most,
                                                      "person_numbers": sorted(self.numbers_seen)}
        return people | {"updates": self.updates, "update_fps": rate,
                         "latency_ms_median": 1000 * float(np.median(lat)),
                         "latency_ms_p95": 1000 * float(np.percentile(lat, 95)),
                         "latency_ms_max": 1000 * float(np.max(lat)), "cameras": self.health()}
