"""A stand-in for ``python -m mocap.io.blender_serve`` without bpy (tests/test_ahead.py): the same
protocol; each "export" copies the capture to the output. ``FAKE_BLENDER_FAIL_AT=I`` fails file I,
``FAKE_BLENDER_DIE_AT=I`` ends the process there, ``FAKE_BLENDER_PIDS=FILE`` appends its pid to FILE."""

import json
import os
import shutil
import sys
import time

from mocap.io.blender_serve import _remove_own_tmp  # as the real child ends: its folder removed


def serve() -> None:
    if os.environ.get("FAKE_BLENDER_PIDS"):
        with open(os.environ["FAKE_BLENDER_PIDS"], "a") as f:
            f.write(f"{os.getpid()}\n")
    time.sleep(float(os.environ.get("FAKE_BLENDER_START_S", "0.2")))  # "loading bpy"
    print(f"mocap-export-ready {time.time():.3f}", flush=True)
    fail, die = int(os.environ.get("FAKE_BLENDER_FAIL_AT", -1)), int(os.environ.get("FAKE_BLENDER_DIE_AT", -1))
    for line in sys.stdin:
        jobs = json.loads(line)
        for i, job in enumerate(jobs):
            if i == die:
                os._exit(3)
            if i == fail:
                print(f"mocap-export-failed ValueError: cannot export {job['out']}", flush=True)
                break
            shutil.copy(job["capture"], job["out"])
            print(f"mocap-export-done {i}", flush=True)
        else:
            print("mocap-export-end", flush=True)


try:
    serve()
finally:  # also when the parent died before reading a reply (a broken pipe), as the real child
    _remove_own_tmp()
