"""A stage's cache key holds the code it runs (mocap.stage_code): an updated module re-runs the stages that
import it, directly or not, and only those."""

import importlib
import sys
import textwrap
from pathlib import Path

import pytest
from pipeline_synth import synthetic_session

import mocap
import mocap.pipeline
import mocap.pipeline_state
from mocap import stage_code
from mocap.pipeline import run
from mocap.stage_code import closure, code_digest

FAST = ["export.formats=['bvh']"]

PACKAGE = {  # a first-party package: what imports what
    "__init__.py": '''
        from pkg.base import VERSION


        def everything():
            from pkg import big  # inside a function: not what names taken from the package need
        ''',
    "base.py": "VERSION = 1\n",
    "big.py": "import numpy\n",
    "stage.py": '''
        import logging

        from pkg import VERSION, sub  # a name from the package, and a subpackage
        from pkg.helper import (
            helps,  # over lines, with comments
            also as renamed,
        )

        log = logging.getLogger("pkg.unrelated")  # a logger's name is not an import
        TARGETS = {"plugin": "pkg.plugin:Plugin"}  # a registry's target


        def run():
            from .lazy import later  # relative, inside a function
        ''',
    "helper.py": "def helps(): ...\ndef also(): ...\n",
    "lazy.py": "later = 1\n",
    "plugin.py": "class Plugin: ...\n",
    "unrelated.py": "import pkg.big\n",
    "ignored.py": "import pkg.big\n",
    "sub/__init__.py": "",
    "sub/inner.py": "import pkg.unrelated\n",
}


@pytest.fixture
def pkg(tmp_path, monkeypatch):
    for rel, text in PACKAGE.items():
        (tmp_path / "pkg" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "pkg" / rel).write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path / "pkg"
    for name in [n for n in sys.modules if n == "pkg" or n.startswith("pkg.")]:
        del sys.modules[name]
    code_digest.cache_clear()
    stage_code._TREES.clear()


def test_closure_follows_imports_anywhere_in_a_file_and_registry_strings(pkg):
    got = {p.relative_to(pkg).as_posix() for p in closure("pkg.stage", {"pkg": pkg})}
    assert got == {"__init__.py", "base.py", "stage.py", "helper.py", "lazy.py", "plugin.py", "sub/__init__.py"}
    got = {p.relative_to(pkg).as_posix() for p in closure("pkg.unrelated", {"pkg": pkg})}
    assert got == {"__init__.py", "unrelated.py", "big.py"}  # the package's file, not what its function imports


def test_digest_changes_with_the_code_a_stage_runs_and_only_that(pkg):
    importlib.import_module("pkg.stage")  # code_digest reads the stage module's CODE_IGNORED from sys.modules

    def digest():
        code_digest.cache_clear()
        stage_code._TREES.clear()
        return code_digest("pkg.stage")

    first = digest()
    assert digest() == first
    (pkg / "unrelated.py").write_text("import pkg.big\nX = 2\n")
    (pkg / "big.py").write_text("X = 3\n")
    assert digest() == first
    (pkg / "lazy.py").write_text("later = 2\n")  # imported inside a function, relatively
    second = digest()
    assert second != first
    (pkg / "base.py").write_text("VERSION = 2\n")  # reached through the package's __init__
    assert digest() not in (first, second)


def test_a_stage_in_a_lone_module_reads_that_file_and_the_packages_it_imports(pkg):
    lone = pkg.parent / "lone_stage.py"
    lone.write_text("from pkg.helper import helps\n")
    importlib.import_module("lone_stage")
    try:
        got = {p.name for p in closure("lone_stage", {"lone_stage": lone, "pkg": pkg})}
        assert got == {"lone_stage.py", "helper.py", "__init__.py"}
        assert len(code_digest("lone_stage")) == 16  # its folder (here the test's) is not searched for modules
        assert stage_code._where(sys.modules["lone_stage"]) == lone
    finally:
        del sys.modules["lone_stage"]


def test_ignored_modules_are_not_followed(pkg):
    (pkg / "stage.py").write_text("import pkg.ignored\nCODE_IGNORED = ('pkg.ignored',)\n")
    both = {"__init__.py", "stage.py"}  # the package by its file: no names taken from it
    assert {p.name for p in closure("pkg.stage", {"pkg": pkg})} == both | {"ignored.py", "big.py"}
    assert {p.name for p in closure("pkg.stage", {"pkg": pkg}, ("pkg.ignored",))} == both


def test_detection_does_not_depend_on_the_fit_nor_the_fit_on_detection():
    roots = {"mocap": Path(mocap.__file__).parent}
    detect = {p.relative_to(roots["mocap"]).as_posix() for p in closure("mocap.stages.detect", roots,
                                                                        ("mocap.ahead", "mocap.warm"))}
    fit = {p.relative_to(roots["mocap"]).as_posix() for p in closure("mocap.stages.fit", roots)}
    assert {"detect/blazepose.py", "detect/onnx.py", "detect/hand_onnx.py", "io/video.py"} <= detect
    assert {"fit/ik.py", "fit/bones.py", "geometry/rotations.py"} <= fit
    assert not any(p.startswith(("fit/", "report/", "view/", "optim/")) for p in detect), sorted(detect)
    assert {p for p in detect if p.startswith("stages/")} == {"stages/__init__.py", "stages/detect.py"}  # no other stage
    assert not any(p.startswith(("detect/", "report/")) for p in fit), sorted(fit)


def test_updated_code_reruns_its_stage_and_what_reads_its_outputs(tmp_path, monkeypatch):
    session = synthetic_session(tmp_path / "take")
    run(session, sets=FAST, progress=False)
    real = stage_code.code_digest

    def updated(module: str) -> str:  # as if mocap/fit/ik.py had changed
        return real(module) + ("-new" if module == "mocap.stages.fit" else "")

    monkeypatch.setattr(mocap.pipeline, "code_digest", updated)
    monkeypatch.setattr(mocap.pipeline_state, "code_digest", updated)
    r = run(session, sets=FAST, progress=False)
    assert all(r.status[k] == "skipped" for k in ("rig_refine", "sync", "triangulate", "refine")), r.status
    assert r.ran[0] == "fit" and r.why["fit"] == "its code changed (mocap was updated)", r.why
    assert run(session, sets=FAST, progress=False).ran == []
