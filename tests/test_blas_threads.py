"""The stages after detection run with every loaded OpenBLAS at one thread (mocap.blas_threads), and the counts
come back after the run, whether it succeeded or failed."""

import numpy as np
import pytest
from pipeline_synth import synthetic_session

from mocap import blas_threads
from mocap.pipeline import run_stages
from mocap.stages import sync


@pytest.fixture
def two_threads():
    """Every loaded OpenBLAS at 2 threads for the test (whatever the machine's cores; one built for a single
    thread stays at 1), then as it was."""
    import scipy.linalg  # noqa: F401 (SciPy's own OpenBLAS loaded too)

    libs = [f for f in map(blas_threads._functions, blas_threads._loaded()) if f is not None]
    if not libs:
        pytest.skip("no OpenBLAS whose threads can be set in this process")
    before = [f[0]() for f in libs]
    for f in libs:
        f[1](2)
    pools = blas_threads.pools()
    if 2 not in pools.values():
        pytest.skip(f"no OpenBLAS here runs 2 threads: {pools}")
    yield pools
    for f, n in zip(libs, before, strict=True):
        f[1](n)


def test_limited_lowers_every_openblas_and_gives_each_its_count_back(two_threads):
    a = np.random.default_rng(0).normal(size=(300, 300))
    with blas_threads.limited(1):
        assert set(blas_threads.pools().values()) == {1}
        with blas_threads.limited(1):  # nested: changes nothing, gives nothing back early
            pass
        assert set(blas_threads.pools().values()) == {1}
        one = a @ a
    assert blas_threads.pools() == two_threads
    assert np.allclose(one, a @ a, rtol=1e-12, atol=1e-12)


def test_limited_gives_the_counts_back_after_an_error(two_threads):
    with pytest.raises(RuntimeError, match="boom"), blas_threads.limited(1):
        raise RuntimeError("boom")
    assert blas_threads.pools() == two_threads


def test_limited_rejects_a_count_below_one():
    with pytest.raises(ValueError, match=r"expected a count ≥ 1, got 0"), blas_threads.limited(0):
        pass


def test_limited_changes_nothing_where_libraries_cannot_be_listed(two_threads, tmp_path, monkeypatch):
    monkeypatch.setattr(blas_threads, "_MAPS", tmp_path / "no-maps")
    assert blas_threads.pools() == {}
    with blas_threads.limited(1):
        monkeypatch.undo()
        assert blas_threads.pools() == two_threads


def test_a_run_solves_after_detection_on_one_blas_thread_and_gives_the_threads_back(two_threads, tmp_path,
                                                                                     monkeypatch):
    session = synthetic_session(tmp_path / "take", frames=30)
    seen = []
    main = sync.main

    def watched(*args, **kwargs):
        seen.append(blas_threads.pools())
        return main(*args, **kwargs)

    monkeypatch.setattr(sync, "main", watched)
    r = run_stages(session, only=["sync"], progress=False)
    assert r.ran == ["sync"] and len(seen) == 1 and set(seen[0].values()) == {1}
    assert blas_threads.pools() == two_threads

    def failing(*args, **kwargs):
        raise RuntimeError("sync broke")

    monkeypatch.setattr(sync, "main", failing)
    with pytest.raises(RuntimeError, match="sync broke"):
        run_stages(session, only=["sync"], force=True, progress=False)
    assert blas_threads.pools() == two_threads


@pytest.mark.parametrize("threads", [1, 0])
def test_bench_robustness_times_the_stages_as_mocap_run_runs_them(two_threads, threads):
    """Its stages timed with OpenBLAS at one thread, as the pipeline runs them after detection (0: left as is)."""
    from mocap.bench.robustness import RobustnessBenchConfig, timed_as_run

    seen, _, _ = timed_as_run(blas_threads.pools, RobustnessBenchConfig(blas_threads=threads))
    assert set(seen.values()) == ({1} if threads else set(two_threads.values())), seen
    assert blas_threads.pools() == two_threads  # given back
