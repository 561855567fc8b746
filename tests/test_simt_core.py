"""The SIMT simulator itself (deepkern._cuda_sim): CUDA semantics of barriers, warp collectives,
atomics and grid_sync, and the bugs it must catch, each shown on a deliberately broken kernel
(csrc/simt/testing/selftest.cpp). Marked `simt`: runs where the simulator is used (conftest.py).
"""

import os
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.simt

# tools/sanitize.sh (DEEPKERN_SANITIZE_SIM=1) builds _cuda_sim with ASan: there an out-of-bounds
# shared access is an ASan report that ends the process, so those kernels run in a subprocess.
ASAN = os.environ.get("DEEPKERN_SANITIZER_BUILD") == "1"


@pytest.fixture(scope="module")
def sim():
    from deepkern import _cuda_sim

    return _cuda_sim


def run(sim, name, n_in, n_out, grid=1, block=32, smem=0, x=None, out=None):
    x = np.arange(n_in, dtype=np.float32) + 1 if x is None else x
    y = np.full(n_out, np.nan, np.float32) if out is None else out
    sim._simt_selftest(name, grid, block, smem, x.ctypes.data, y.ctypes.data, n_in)
    return x, y


def asan_report(name, n, grid=1, block=32, smem=0):
    code = (
        "import numpy as np; from deepkern import _cuda_sim as s; "
        f"x = np.arange({n}, dtype=np.float32); y = np.zeros({n}, np.float32); "
        f"s._simt_selftest({name!r}, {grid}, {block}, {smem}, x.ctypes.data, y.ctypes.data, {n})"
    )
    # UBSan may see the access first (array bounds, object size): let it go on, so ASan reports too
    env = dict(
        os.environ,
        ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":log_path=stderr",
        UBSAN_OPTIONS=os.environ.get("UBSAN_OPTIONS", "") + ":halt_on_error=0",
    )
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode != 0, p.stderr[-2000:]
    return p.stderr


def with_order(monkeypatch, order):
    monkeypatch.setenv("DEEPKERN_SIM_ORDER", order)


@pytest.mark.parametrize("order", ["ascending", "reversed", "random:1", "random:99"])
def test_barrier_makes_shared_memory_visible(sim, monkeypatch, order):
    with_order(monkeypatch, order)
    x, y = run(sim, "shift_ok", 3 * 128, 3 * 128, grid=3, block=128)
    np.testing.assert_array_equal(y, np.roll(x.reshape(3, 128), 1, axis=1).ravel())


def test_missing_syncthreads_is_caught_in_reversed_and_random_order(sim, monkeypatch):
    """Thread t reads s[t-1] without a barrier: right by luck in ascending order (as on many GPU
    runs), poison (NaN) in reversed and random order."""
    want = np.concatenate([[1.0], np.arange(1, 128, dtype=np.float32)])
    with_order(monkeypatch, "ascending")
    _, y = run(sim, "shift_missing_sync", 128, 128, block=128)
    np.testing.assert_array_equal(y, want)
    for order in ("reversed", "random:5"):
        with_order(monkeypatch, order)
        _, y = run(sim, "shift_missing_sync", 128, 128, block=128)
        assert np.isnan(y).sum() > 32, order  # reads of unwritten shared memory


@pytest.mark.parametrize("name", ["divergent_barrier", "mismatched_barriers"])
def test_divergent_barrier_is_an_error_naming_thread_and_line(sim, name):
    with pytest.raises(
        RuntimeError,
        match=r"divergent barrier.*__syncthreads.*block \(0,0,0\) thread \(\d+,0,0\) at .*selftest\.cpp:\d+",
    ):
        run(sim, name, 64, 64, block=64)


def test_shuffle_mask_without_the_caller_is_an_error(sim):
    with pytest.raises(
        RuntimeError,
        match=r"__shfl_sync: mask 0x0000ffff does not name the calling lane (1[6-9]|2\d|3[01]) .*thread \(\1,0,0\)",
    ):
        run(sim, "shfl_mask_misses_caller", 32, 32)


def test_shuffle_that_half_the_warp_skips_is_an_error(sim):
    with pytest.raises(RuntimeError, match=r"__shfl_xor_sync.*(names lane 16, which has exited|cannot complete)"):
        run(sim, "shfl_half_warp", 32, 32)


def test_dynamic_shared_overflow_is_caught(sim):
    if ASAN:
        assert "heap-buffer-overflow" in asan_report("dynamic_smem_overflow", 32, smem=32 * 4)
        return
    with pytest.raises(RuntimeError, match="past the end of dynamic shared memory \\(128 bytes"):
        run(sim, "dynamic_smem_overflow", 32, 32, smem=32 * 4)


@pytest.mark.parametrize("name", ["static_smem_read_past", "static_smem_ptr_past"])
def test_static_shared_read_past_the_end_is_caught(sim, name):
    if ASAN:  # the red zone after the array
        assert "AddressSanitizer: use-after-poison" in asan_report(name, 32)
        return
    _, y = run(sim, name, 32, 32)  # plain build: the 0xFF poison, a NaN
    np.testing.assert_array_equal(y[:31], np.arange(2, 33, dtype=np.float32))
    assert np.isnan(y[31])


def test_shared_memory_is_refilled_with_ff_in_every_block(sim):
    _, y = run(sim, "read_unwritten", 4 * 32, 4 * 32, grid=4, smem=32 * 4)
    assert np.isnan(y).all() and (y.view(np.uint32) == 0xFFFFFFFF).all()


def test_warp_collectives_match_their_definitions(sim, rng):
    x = rng.integers(-5, 6, 64).astype(np.float32)
    _, y = run(sim, "warp_ops", 64, 640, block=64, x=x)
    y = y.reshape(64, 10)
    w = x.reshape(2, 32)
    for t in range(64):
        wl, lane = divmod(t, 32)
        # __shfl_down_sync sums: lane l gets the sum of lanes l, l+1, ... within its tree
        assert y[t, 1] == w[wl].max()
        assert y[t, 2] == w[wl, : lane + 1].sum()
        ballot = sum(1 << i for i in range(32) if w[wl, i] > 0)
        assert int(y[t, 3]) == ballot & 0xFFFF and int(y[t, 4]) == ballot >> 16
        assert y[t, 5] == w[wl, (lane // 8) * 8 + 3]
        assert y[t, 6] == w[wl].sum()
        assert y[t, 7] == float(bool((w[wl] > 2).any())) + 2
        assert y[t, 8] == (x > 0).sum() and y[t, 9] == 1
    assert y[0, 0] == w[0].sum() and y[32, 0] == w[1].sum()


def test_atomics_are_real_across_blocks(sim, rng):
    x = rng.integers(0, 4, 256 * 64).astype(np.float32)
    out = np.zeros(1, np.float32)
    run(sim, "atomic_sum", x.size, 1, grid=64, block=256, x=x, out=out)
    assert out[0] == x.sum()


def test_grid_sync_runs_all_blocks_together(sim):
    x = np.arange(5, dtype=np.float32) + 1
    _, y = run(sim, "grid_neighbour", 5, 10, grid=5, block=64, x=x)
    np.testing.assert_array_equal(y[:5], 2 * x)
    np.testing.assert_array_equal(y[5:], 2 * np.roll(x, -1) + x)


def test_grid_sync_outside_a_cooperative_launch_is_an_error(sim):
    with pytest.raises(RuntimeError, match="grid_sync in a kernel not launched with launch_cooperative"):
        run(sim, "grid_neighbour_not_cooperative", 4, 8, grid=4)


def test_grid_sync_that_a_block_skips_is_an_error(sim):
    with pytest.raises(RuntimeError, match=r"grid_sync cannot complete: block \(0,0,0\) has exited"):
        run(sim, "grid_early_exit", 3, 3, grid=3)


def test_launch_limits_are_checked(sim):
    with pytest.raises(RuntimeError, match="more than 1024 threads"):
        run(sim, "shift_ok", 2048, 2048, block=2048)
    with pytest.raises(RuntimeError, match="need set_max_dynamic_shared"):
        run(sim, "read_unwritten", 32, 32, smem=64 * 1024)


def test_bad_order_setting_is_a_clear_error(sim, monkeypatch):
    with_order(monkeypatch, "backwards")
    with pytest.raises(RuntimeError, match="DEEPKERN_SIM_ORDER must be ascending, reversed or random:SEED"):
        run(sim, "shift_ok", 32, 32)
