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


def test_statements_after_semicolons_colons_and_continuations_are_read(pkg):
    for name in ("semi", "oneline", "after", "later", "cont"):
        (pkg / f"{name}.py").write_text("")
    (pkg / "stage.py").write_text(textwrap.dedent('''\
        \ufeffimport os; import pkg.semi
        if os.name: import pkg.oneline
        from pkg.base import VERSION  # a comment with a ( in it
        import pkg.after
        from pkg.helper import (helps,  # a comment with a ) in it
                                also)
        from pkg.lazy import later, \\
            later as again
        import pkg.cont as \\
            cont
        '''))
    got = {p.name for p in closure("pkg.stage", {"pkg": pkg})}
    assert {"semi.py", "oneline.py", "base.py", "after.py", "helper.py", "lazy.py", "cont.py"} <= got, got


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
    third = digest()
    assert third not in (first, second)
    (pkg / "base.py").write_bytes(b"VERSION = 2\r\n")  # the same code with CRLF line ends
    assert digest() == third


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
    from mocap.stages import detect as stage

    detect = {p.relative_to(roots["mocap"]).as_posix() for p in closure("mocap.stages.detect", roots,
                                                                        stage.CODE_IGNORED)}
    fit = {p.relative_to(roots["mocap"]).as_posix() for p in closure("mocap.stages.fit", roots)}
    assert {"detect/blazepose.py", "detect/onnx.py", "detect/hand_onnx.py", "io/video.py"} <= detect
    assert {"fit/ik.py", "fit/bones.py", "geometry/rotations.py"} <= fit
    # optim/ and the other stages stay out only through detect's CODE_IGNORED entry for the camera refinement its
    # second pass looks through (a deliberate exception, see mocap/stage_code.py)
    assert "mocap.stages.rig_people" in stage.CODE_IGNORED
    assert not any(p.startswith(("fit/", "report/", "view/", "optim/")) for p in detect), sorted(detect)
    assert {p for p in detect if p.startswith("stages/")} == {"stages/__init__.py", "stages/detect.py"}  # no other
    assert not any(p.startswith(("detect/", "report/")) for p in fit), sorted(fit)


def test_shipped_presets_count_for_the_stages_that_read_their_kind(tmp_path, monkeypatch):
    import shutil

    from mocap.config_files import configs_dir
    from mocap.stages import detect, fit  # noqa: F401 (code_digest reads them from sys.modules)

    def digests():
        code_digest.cache_clear()
        stage_code._presets.cache_clear()
        return code_digest("mocap.stages.detect"), code_digest("mocap.stages.fit")

    copy = tmp_path / "configs"
    shutil.copytree(configs_dir(), copy)
    monkeypatch.setenv("MOCAP_CONFIGS", str(copy))
    first = digests()
    skeleton = copy / "skeletons" / "body22.toml"
    skeleton.write_text(skeleton.read_text() + "\n# edited\n")
    second = digests()
    assert second[0] == first[0] and second[1] != first[1]  # detection reads keypoint sets only
    keypoints = copy / "keypoints" / "blazepose33.toml"
    keypoints.write_text(keypoints.read_text() + "\n# edited\n")
    third = digests()
    assert third[0] != second[0] and third[1] != second[1]
    monkeypatch.delenv("MOCAP_CONFIGS")
    assert digests() == first


def test_a_stage_outside_the_package_folders_counts_by_its_source(tmp_path, monkeypatch):
    import zipfile

    digests = []
    for body in ("X = 1\n", "X = 2\n"):
        archive = tmp_path / f"stage{len(digests)}.zip"
        with zipfile.ZipFile(archive, "w") as z:
            z.writestr("zipped_stage.py", body)
        monkeypatch.syspath_prepend(str(archive))
        importlib.import_module("zipped_stage")
        code_digest.cache_clear()
        digests.append(code_digest("zipped_stage"))
        del sys.modules["zipped_stage"]
        sys.path.remove(str(archive))
    assert digests[0] != digests[1]


def test_updated_code_reruns_its_stage_and_what_reads_its_outputs(tmp_path, monkeypatch):
    session = synthetic_session(tmp_path / "take")
    run(session, sets=FAST, progress=False)
    real = stage_code.code_digest

    def updated(module: str) -> str:  # as if mocap/fit/ik.py had changed
        return real(module) + ("-new" if module == "mocap.stages.fit" else "")

    monkeypatch.setattr(mocap, "__version__", "99.0")  # a release: only the code counts
    assert run(session, sets=FAST, progress=False).ran == []
    monkeypatch.setattr(mocap.pipeline, "code_digest", updated)
    monkeypatch.setattr(mocap.pipeline_state, "code_digest", updated)
    r = run(session, sets=FAST, progress=False)
    assert all(r.status[k] == "skipped" for k in ("rig_refine", "sync", "triangulate", "refine")), r.status
    assert r.ran[0] == "fit" and r.why["fit"] == "its code changed (mocap was updated)", r.why
    assert run(session, sets=FAST, progress=False).ran == []
