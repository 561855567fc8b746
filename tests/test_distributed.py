"""deepkern.distributed under real MPI: pytest starts `mpiexec -n 2` / `-n 3` jobs running
tests/distributed/worker.py and compares what they write with the same training done here in
one process. Skipped (with a warning) only when mpi4py is not installed."""

import os
import shutil
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "distributed"))
import deepkern as dk  # noqa: E402
import dist_models as models  # noqa: E402
from deepkern.distributed.data_parallel import _first_difference, bounds, model_fingerprint  # noqa: E402

try:
    import mpi4py  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    mpi4py = None
    warnings.warn(  # noqa: B028
        "mpi4py is not installed: the MPI tests of deepkern.distributed are SKIPPED "
        "(pip install 'deepkern[mpi]' to run them)"
    )
needs_mpi = pytest.mark.skipif(mpi4py is None, reason="mpi4py is not installed (pip install 'deepkern[mpi]')")

WORKER = os.path.join(HERE, "distributed", "worker.py")
TIMEOUT = 120


def _mpiexec():
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    found = here if os.path.exists(here) else shutil.which("mpiexec")
    assert found, f"mpi4py is installed but no mpiexec next to {sys.executable} nor on PATH (the mpich wheel has one)"
    return found


def launch(n, scenario, out, *args, expect_ok=True):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    src = os.path.join(os.path.dirname(HERE), "python")
    if (
        os.path.isdir(os.path.join(src, "deepkern"))
        and "deepkern" in sys.modules
        and sys.modules["deepkern"].__file__.startswith(src)
    ):
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")  # the tree these tests import
    cmd = [_mpiexec(), "-n", str(n), sys.executable, WORKER, scenario, str(out), *args]
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, env=env)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{' '.join(cmd)} hung: no exit after {TIMEOUT} s\nstderr:\n{e.stderr}")
    if expect_ok and p.returncode != 0:
        pytest.fail(
            f"{' '.join(cmd)} exited with {p.returncode}\nstdout:\n{p.stdout[-3000:]}\nstderr:\n{p.stderr[-6000:]}"
        )
    p.elapsed = time.monotonic() - t0
    return p


# -- pure logic (no MPI) ----------------------------------------------------------------------------
@pytest.mark.parametrize("n", [0, 1, 2, 5, 7, 8, 33])
@pytest.mark.parametrize("size", [1, 2, 3, 8])
def test_shard_bounds_cover_the_batch_once(n, size):
    parts = [bounds(n, r, size) for r in range(size)]
    assert parts[0][0] == 0 and parts[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
    sizes = [hi - lo for lo, hi in parts]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_fingerprint_names_what_differs():
    a, b = models.mlp(), models.mlp()
    b.layers[2] = dk.nn.Dense(16, 13)
    fa, fb = model_fingerprint(a), model_fingerprint(b)
    assert fa != fb and fa == model_fingerprint(models.mlp(seed=5))
    x, y = _first_difference(fa, fb)
    assert "[12, 16]" in x and "[13, 16]" in y
    assert model_fingerprint(models.mlp(np.float32)) != fa  # dtype counts


def test_not_initialised_is_a_clear_error():
    from deepkern import distributed as dist

    if dist.is_initialized():
        pytest.skip("this process already joined an MPI job")
    assert dist.rank() == 0 and dist.world_size() == 1
    with pytest.raises(RuntimeError, match="init"):
        dist.all_reduce(np.ones(2))


# -- under mpiexec -------------------------------------------------------------------------------------
@needs_mpi
@pytest.mark.parametrize("n", [2, 3])
def test_collectives(tmp_path, n):
    launch(n, "collectives", tmp_path)
    assert (tmp_path / "collectives.ok").exists()


def _reference_fit(k, kind, n, batch, opt, epochs, dtype):
    model = models.MODELS[kind](dtype, seed=0)
    x, y = models.data(kind, n, dtype)
    o = models.optimizer(opt, model)
    h = model.fit(
        x,
        y,
        "cross_entropy",
        o,
        epochs=epochs,
        batch_size=batch,
        seed=7,
        progress=False,
        validation_data=(x[:9], y[:9]),
        **models.fit_extras(k, o),
    )
    ev = model.evaluate(x, y, "cross_entropy", batch_size=4)
    return models.params(model), h, ev


def _reference_loop():
    model = models.cnn(np.float64, seed=3)
    x, y = models.data("cnn", 29, np.float64)
    o = models.optimizer("adam", model)
    loss = dk.nn.SoftmaxCrossEntropy()
    rng = np.random.default_rng(7)
    for _ in range(2):
        order = rng.permutation(len(x))
        for s in range(0, len(x), 6):
            idx = order[s : s + 6]
            model.zero_grad()
            loss.forward(model.forward(x[idx]), y[idx])
            model.backward(loss.backward())
            o.step()
    return models.params(model)


@needs_mpi
@pytest.mark.parametrize("n", [2, 3])
def test_n_processes_take_the_steps_of_one(tmp_path, n):
    """fit(distributed=True) on n ranks == fit in one process: same global batches, parameters equal
    to float rounding after every case's steps (SGD with momentum and Adam; uneven shards; batches
    smaller than the number of ranks; MLP, CNN, LSTM LM; gradient clipping, an LR schedule and early
    stopping with restore), history and evaluate equal too."""
    launch(n, "train", tmp_path)
    got = np.load(tmp_path / "train.npz")
    for k, case in enumerate(models.TRAIN_CASES):
        for dtype, rtol, atol in [(np.float64, 1e-10, 1e-12), (np.float32, 2e-4, 2e-5)]:
            tag = f"{k}_{np.dtype(dtype).name}"
            ps, h, ev = _reference_fit(k, *case, dtype)
            for i, p in enumerate(ps):
                np.testing.assert_allclose(
                    got[f"fit_{tag}_p{i}"], p, rtol=rtol, atol=atol, err_msg=f"{case} {tag} p{i}"
                )
            for key, v in h.items():
                np.testing.assert_allclose(got[f"fit_{tag}_h_{key}"], v, rtol=rtol, atol=atol, err_msg=f"{case} {key}")
            np.testing.assert_allclose(got[f"fit_{tag}_eval"], [ev["loss"], ev["accuracy"]], rtol=rtol, atol=atol)
    for i, p in enumerate(_reference_loop()):
        np.testing.assert_allclose(got[f"loop_p{i}"], p, rtol=1e-10, atol=1e-12, err_msg=f"custom loop p{i}")


@needs_mpi
def test_mismatched_models_fail_clearly(tmp_path):
    p = launch(3, "mismatch", tmp_path, expect_ok=False)
    assert p.returncode != 0
    assert "the model (layers, parameter names, shapes, dtypes, devices) differs between ranks" in p.stderr, p.stderr
    assert "rank 1 has" in p.stderr and "[13, 16]" in p.stderr, p.stderr


@needs_mpi
def test_a_raising_rank_ends_the_job_with_its_error(tmp_path):
    p = launch(2, "raise", tmp_path, expect_ok=False)
    assert p.returncode != 0
    assert "rank 1 of 2 raised RuntimeError: boom in rank 1's forward" in p.stderr, p.stderr
    assert "rank 0 of 2 raised" not in p.stderr  # rank 0 was only waiting in the all-reduce


@needs_mpi
@pytest.mark.parametrize("save_n,resume_n,kind,opt", [(2, 3, "mlp", "adam"), (3, 2, "cnn", "sgd")])
def test_checkpoint_from_n_ranks_resumes_on_m(tmp_path, save_n, resume_n, kind, opt):
    launch(save_n, "ckpt_save", tmp_path, kind, opt)
    launch(resume_n, "ckpt_resume", tmp_path, kind, opt)
    got = np.load(tmp_path / "resumed.npz")
    model = models.MODELS[kind](np.float64, seed=0)
    x, y = models.data(kind, 31)
    o = models.optimizer(opt, model)
    model.fit(x, y, "cross_entropy", o, epochs=2, batch_size=8, seed=1, progress=False)
    model.fit(x, y, "cross_entropy", o, epochs=1, batch_size=8, seed=2, progress=False)
    for i, p in enumerate(models.params(model)):
        np.testing.assert_allclose(got[f"arr_{i}"], p, rtol=1e-10, atol=1e-12)
    # the same file resumes in a plain single process too
    m2 = models.MODELS[kind](np.float64, seed=9)
    o2 = models.optimizer(opt, m2)
    assert dk.distributed.load_checkpoint(str(tmp_path / "ckpt.npz"), m2, o2)["epoch"] == 2
    assert o2.step_count == o.step_count - 4


@needs_mpi
def test_rl_sweep_is_the_same_on_any_number_of_ranks(tmp_path):
    """batch_train over 3 ranks == its documented blocks run here one after the other."""
    from deepkern import rl
    from deepkern.rl._batch_dist import BLOCK_RUNS

    launch(3, "rl", tmp_path)
    got = np.load(tmp_path / "rl.npz")
    runs = 2300
    nb = -(-runs // BLOCK_RUNS)
    sizes = [hi - lo for lo, hi in (bounds(runs, b, nb) for b in range(nb))]
    a_ss, e_ss = np.random.SeedSequence(5).spawn(nb), np.random.SeedSequence(6).spawn(nb)
    parts = [
        rl.batch_train(
            rl.FrozenLake(),
            "q_learning",
            m,
            15,
            gamma=0.95,
            epsilon=0.3,
            seed=np.random.default_rng(a),
            env_seed=np.random.default_rng(e),
            return_lengths=True,
            return_q=True,
        )
        for m, a, e in zip(sizes, a_ss, e_ss)
    ]
    for k, name in enumerate(["returns", "lengths", "q"]):
        np.testing.assert_array_equal(got[name], np.concatenate([p[k] for p in parts]))


@needs_mpi
def test_nccl_path_logic_on_the_cupy_standin(tmp_path):
    """cupy arrays go through the NCCL code: dtype codes, ops, counts, the unique id broadcast from
    rank 0, one communicator, result shapes. With the cupy stand-in and a fake NCCL (fake_nccl.py):
    this is NOT a run of real NCCL on GPUs."""
    launch(3, "nccl_standin", tmp_path)
    assert (tmp_path / "nccl.ok").exists()


def test_each_rank_picks_the_gpu_of_its_local_rank():
    from types import SimpleNamespace

    from deepkern.distributed._nccl import pick_device

    def fake(count):
        return SimpleNamespace(cuda=SimpleNamespace(runtime=SimpleNamespace(getDeviceCount=lambda: count)))

    assert [pick_device(fake(4), r) for r in range(6)] == [0, 1, 2, 3, 0, 1]
    assert [pick_device(fake(1), r) for r in range(3)] == [0, 0, 0]  # CUDA_VISIBLE_DEVICES gave each rank one
    with pytest.raises(RuntimeError, match="no CUDA device"):
        pick_device(fake(0), 0)


def test_missing_mpi4py_is_a_clear_import_error(monkeypatch):
    from deepkern.distributed import _runtime

    monkeypatch.setitem(sys.modules, "mpi4py", None)  # `import mpi4py` now raises ImportError
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "4")
    with pytest.raises(ImportError, match=r"needs mpi4py .*launched as one of 4.*deepkern\[mpi\]"):
        _runtime._import_mpi()


def _plain_python(code, **env):
    full = dict(os.environ, **env)
    src = os.path.join(os.path.dirname(HERE), "python")
    if sys.modules["deepkern"].__file__.startswith(src):
        full["PYTHONPATH"] = src + os.pathsep + full.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT, env=full)


@needs_mpi
def test_plain_python_is_a_job_of_one_and_a_broken_launch_is_an_error():
    code = (
        "from deepkern import distributed as d; import numpy as np; n = d.init(); "
        "print(n, d.rank(), d.local_rank(), d.all_reduce(np.arange(3.0)).tolist())"
    )
    p = _plain_python(code)
    assert p.returncode == 0 and p.stdout.split() == ["1", "0", "0", "[0.0,", "1.0,", "2.0]"], p.stderr
    p = _plain_python(code, SLURM_STEP_NUM_TASKS="3")  # srun started 3, but MPI was not reached
    assert p.returncode != 0
    assert "the launcher started 3 processes (SLURM_STEP_NUM_TASKS=3) but MPI sees a world of 1" in p.stderr, p.stderr


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_checkpoint_in_one_process_resumes_exactly(tmp_path, opt):
    """fit(checkpoint=...) without MPI: the file restores parameters and optimizer state, and
    Sequential.load reads it too."""
    path = str(tmp_path / "c.npz")
    model = models.mlp(np.float32)
    x, y = models.data("mlp", 30, np.float32)
    o = models.optimizer(opt, model)
    model.fit(x, y, "cross_entropy", o, epochs=2, batch_size=8, seed=1, progress=False, checkpoint=path)
    m2 = models.mlp(np.float32, seed=11)
    o2 = models.optimizer(opt, m2)
    meta = dk.distributed.load_checkpoint(path, m2, o2)
    assert meta["epoch"] == 2 and len(meta["history"]["loss"]) == 2
    for a, b in zip(models.params(m2), models.params(model)):
        np.testing.assert_array_equal(a, b)
    model.fit(x, y, "cross_entropy", o, epochs=1, batch_size=8, seed=2, progress=False)
    m2.fit(x, y, "cross_entropy", o2, epochs=1, batch_size=8, seed=2, progress=False)
    for a, b in zip(models.params(m2), models.params(model)):
        np.testing.assert_array_equal(a, b)
    loaded = dk.nn.Sequential.load(path)
    assert [p.shape for p in loaded.parameters()] == [p.shape for p in model.parameters()]
    with pytest.raises(ValueError, match="holds the state of a"):
        dk.distributed.load_checkpoint(path, m2, models.optimizer("adam" if opt == "sgd" else "sgd", m2))
