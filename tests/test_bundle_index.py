"""The BlazePose ``.task`` bundle's name is found through the cache's index by a new process (a pool worker)
without reading and hashing the tflite files, until one of them changes; a bad index costs only a hash."""

import json
import os
from pathlib import Path

import pytest


@pytest.fixture
def model(landmark_model_copy):
    return landmark_model_copy


def _reads(monkeypatch) -> list[str]:
    reads: list[str] = []
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self.name) or real(self))
    return reads


def test_a_new_process_finds_the_bundle_without_hashing(tmp_path, model, monkeypatch):
    from mocap.detect import blazepose

    cache = tmp_path / "cache"
    first = blazepose.build_bundle("full", model, cache=cache)
    assert (cache / blazepose.INDEX).is_file()
    monkeypatch.setattr(blazepose, "_bundles", {})  # what a fresh worker process knows
    reads = _reads(monkeypatch)
    assert blazepose.build_bundle("full", model, cache=cache) == first and reads == []
    st = model.stat()
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched: hashed again, same bundle
    monkeypatch.setattr(blazepose, "_bundles", {})
    assert blazepose.build_bundle("full", model, cache=cache) == first
    assert sorted(reads) == ["landmarks.tflite", "pose_detection.tflite"]
    assert len(json.loads((cache / blazepose.INDEX).read_text())) == 2  # both versions listed


@pytest.mark.parametrize("index", ["not json", '["a list"]', None])
def test_a_bad_index_entry_is_not_followed(tmp_path, model, monkeypatch, index):
    from mocap.detect import blazepose

    cache = tmp_path / "cache"
    first = blazepose.build_bundle("full", model, cache=cache)
    (tmp_path / "elsewhere.task").write_bytes(b"not a bundle")
    if index is None:  # an entry naming a file outside the cache
        entries = json.loads((cache / blazepose.INDEX).read_text())
        index = json.dumps({k: "../elsewhere.task" for k in entries})
    (cache / blazepose.INDEX).write_text(index)
    monkeypatch.setattr(blazepose, "_bundles", {})
    reads = _reads(monkeypatch)
    assert blazepose.build_bundle("full", model, cache=cache) == first
    assert sorted(reads) == ["landmarks.tflite", "pose_detection.tflite"]  # hashed: the index was not trusted
    assert json.loads((cache / blazepose.INDEX).read_text())  # and written again, readable
