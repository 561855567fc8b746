"""Run under mpiexec by tests/test_distributed.py: `python worker.py SCENARIO OUTDIR [args]`.
Each scenario checks what it can in place (an assertion brings the job down through the abort
hook) and rank 0 writes what the test compares with a single-process run to OUTDIR."""

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deepkern as dk  # noqa: E402
import dist_models as models  # noqa: E402
from deepkern import distributed as dist  # noqa: E402

dk.set_num_threads(1)


def same_on_every_rank(arrays, what):
    for i, a in enumerate(arrays):
        everyone = dist.all_gather(np.ascontiguousarray(a))
        assert (everyone == everyone[0]).all(), f"{what}: array {i} differs between ranks"


def collectives(out):
    r, n = dist.rank(), dist.world_size()
    for dtype in (np.float32, np.float64, np.int32, np.int64):
        a = (np.arange(12).reshape(3, 4) * (r + 1) - 5).astype(dtype)
        keep = a.copy()
        everyone = [(np.arange(12).reshape(3, 4) * (q + 1) - 5).astype(dtype) for q in range(n)]
        for op, ref in [
            ("sum", sum(everyone)),
            ("max", np.maximum.reduce(everyone)),
            ("min", np.minimum.reduce(everyone)),
            ("mean", sum(everyone) / n),
        ]:
            got = dist.all_reduce(a, op=op)
            assert got.shape == a.shape and (got.dtype == dtype or op == "mean"), (op, got.dtype)
            np.testing.assert_allclose(got, ref, rtol=1e-6 if dtype == np.float32 else 1e-15)
        np.testing.assert_array_equal(a, keep)  # input never modified
    # non-contiguous input and a 0-d value
    big = np.arange(20.0).reshape(4, 5) + r
    np.testing.assert_array_equal(dist.all_reduce(big[:, ::2]), n * (big[:, ::2] - r) + sum(range(n)))
    assert float(dist.all_reduce(np.float64(r + 1))) == n * (n + 1) / 2
    for root in (0, n - 1):
        mine = np.full((2, 3), 10.0 * r) if r == root else (None if r % 2 else np.zeros(1))
        got = dist.broadcast(mine, root=root)
        np.testing.assert_array_equal(got, np.full((2, 3), 10.0 * root))
        if r == root:
            got[0, 0] = -1
            assert mine[0, 0] == 10.0 * root  # a new array, not the root's own
    st = dist.all_gather(np.full((2, 2), r, dtype=np.int64))
    assert st.shape == (n, 2, 2) and all((st[q] == q).all() for q in range(n))
    cat = dist.all_gather(np.full((3, r + 1), float(r)), axis=1)  # uneven along axis 1
    ref = np.concatenate([np.full((3, q + 1), float(q)) for q in range(n)], axis=1)
    np.testing.assert_array_equal(cat, ref)
    # errors: the same clear exception on every rank, never a hang
    for call, msg in [
        (lambda: dist.all_reduce(np.zeros(3 + r)), "rank 0 has"),
        (lambda: dist.all_reduce(np.zeros(3), op="prod"), "'op'"),
        (lambda: dist.all_reduce(np.zeros(3, dtype=bool)), "dtype bool"),
        (lambda: dist.broadcast(np.zeros(2), root=n), "'root'"),
        (lambda: dist.all_gather(np.zeros((2, 2 + r))), "same shape"),
    ]:
        try:
            call()
        except (ValueError, TypeError) as e:
            assert msg in str(e), (msg, str(e))
        else:
            raise AssertionError(f"no error for {msg}")
    dist.barrier()
    if r == 0:
        open(os.path.join(out, "collectives.ok"), "w").write("ok")


def train(out):
    """fit(distributed=True) for every TRAIN_CASE (ranks start from different weights: rank 0's
    are broadcast), plus the same through DataParallel in a custom loop with one bucket per parameter."""
    r = dist.rank()
    res = {}
    for k, (kind, n, batch, opt, epochs) in enumerate(models.TRAIN_CASES):
        for dtype in (np.float64, np.float32):
            model = models.MODELS[kind](dtype, seed=100 * r)  # broadcast makes rank 0's weights everyone's
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
                progress=(r == 0),
                distributed=True,
                validation_data=(x[:9], y[:9]),
                **models.fit_extras(k, o),
            )
            same_on_every_rank(models.params(model), f"case {k}")
            ev = model.evaluate(x, y, "cross_entropy", batch_size=4, distributed=True)
            tag = f"{k}_{np.dtype(dtype).name}"
            for i, p in enumerate(models.params(model)):
                res[f"fit_{tag}_p{i}"] = p
            for key, v in h.items():
                res[f"fit_{tag}_h_{key}"] = np.array(v)
            res[f"fit_{tag}_eval"] = np.array([ev["loss"], ev["accuracy"]])
    # custom loop, tiny buckets (one per parameter): reductions start during the backward
    model = models.cnn(np.float64, seed=3 + r)
    x, y = models.data("cnn", 29, np.float64)
    o = models.optimizer("adam", model)
    dp = dist.DataParallel(model, bucket_mb=1e-6)
    assert len(dp._buckets) == len(model.parameters()), len(dp._buckets)
    launched_before_first_layer = []
    first = model.layers[0]
    orig = first.backward

    def spy(dy):
        launched_before_first_layer.append(dp._next)
        return orig(dy)

    first.backward = spy
    loss = dk.nn.SoftmaxCrossEntropy()
    rng = np.random.default_rng(7)
    for _ in range(2):
        order = rng.permutation(len(x))
        for s in range(0, len(x), 6):
            mine = dp.shard(order[s : s + 6])
            model.zero_grad()
            if len(mine):
                loss.forward(model.forward(x[mine]), y[mine])
                dp.backward(loss.backward())
            else:
                dp.sync_gradients()
            o.step()
    # the first conv's gradients are the last to be ready: every other bucket was launched before
    n_first = len(first.parameters())
    assert min(launched_before_first_layer) == len(dp._buckets) - n_first, launched_before_first_layer
    same_on_every_rank(models.params(model), "custom loop")
    for i, p in enumerate(models.params(model)):
        res[f"loop_p{i}"] = p
    if r == 0:
        np.savez(os.path.join(out, "train.npz"), **res)


def mismatch(out):
    """Rank 1 builds a different model: every rank raises a clear error at the first step."""
    model = models.mlp() if dist.rank() != 1 else models.MODELS["mlp"](np.float64)
    if dist.rank() == 1:
        model.layers[2] = dk.nn.Dense(16, 13)
        model.layers[4] = dk.nn.Dense(13, 3)
    x, y = models.data("mlp", 10)
    model.fit(x, y, "cross_entropy", "sgd", epochs=1, batch_size=4, distributed=True, progress=False)


def raising(out):
    """Rank 1 raises in its second step while the others wait in the all-reduce."""
    model = models.mlp()
    x, y = models.data("mlp", 64)
    if dist.rank() == 1:
        calls = [0]
        real = model.layers[0].forward

        def forward(x, training=True):
            calls[0] += 1
            if calls[0] == 2:
                raise RuntimeError("boom in rank 1's forward")
            return real(x, training)

        model.layers[0].forward = forward
    open(os.path.join(out, f"started_{dist.rank()}"), "w").write(str(time.time()))
    model.fit(x, y, "cross_entropy", "sgd", epochs=50, batch_size=8, distributed=True, progress=False)


def ckpt_save(out, kind, opt):
    """Two epochs with a checkpoint after each (written by rank 0 only)."""
    model = models.MODELS[kind](np.float64, seed=0)
    x, y = models.data(kind, 31)
    model.fit(
        x,
        y,
        "cross_entropy",
        models.optimizer(opt, model),
        epochs=2,
        batch_size=8,
        seed=1,
        distributed=True,
        progress=False,
        checkpoint=os.path.join(out, "ckpt.npz"),
    )
    files = sorted(f for f in os.listdir(out) if f.startswith("ckpt"))
    assert files == ["ckpt.npz"], files


def ckpt_resume(out, kind, opt):
    """Resume the checkpoint (written by another number of ranks) and train one more epoch."""
    model = models.MODELS[kind](np.float64, seed=50 + dist.rank())
    o = models.optimizer(opt, model)
    meta = dist.load_checkpoint(os.path.join(out, "ckpt.npz"), model, o)
    assert meta["epoch"] == 2, meta
    x, y = models.data(kind, 31)
    model.fit(x, y, "cross_entropy", o, epochs=1, batch_size=8, seed=2, distributed=True, progress=False)
    same_on_every_rank(models.params(model), "resumed")
    if dist.rank() == 0:
        np.savez(os.path.join(out, "resumed.npz"), *models.params(model))


def rl_sweep(out):
    from deepkern import rl

    got = rl.batch_train(
        rl.FrozenLake(),
        "q_learning",
        2300,
        15,
        gamma=0.95,
        epsilon=0.3,
        seed=5,
        env_seed=6,
        return_lengths=True,
        return_q=True,
    )  # distributed=None: spread, since N > 1
    if dist.rank() == 0:
        np.savez(os.path.join(out, "rl.npz"), returns=got[0], lengths=got[1], q=got[2])
    else:
        assert got is None


def nccl_standin(out):
    """The cupy/NCCL path's logic on the cupy stand-in with a fake NCCL (see fake_nccl.py)."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(os.path.dirname(here), "cupy_standin"))
    import cupy
    import deepkern._backend as backend
    from deepkern.distributed import _nccl
    from fake_nccl import FakeNccl

    assert "cupy_standin" in cupy.__file__
    backend._cuda = None  # a stand-in array never reaches a real CUDA module
    fake = FakeNccl()
    _nccl.nccl_module = lambda: fake
    _nccl.ptr = fake.ptr
    cupy.cuda.runtime.getDeviceCount = lambda: 1  # the stand-in's arrays are all on device 0
    r, n = dist.rank(), dist.world_size()
    for dtype in (np.float32, np.float64, np.int64):
        host = (np.arange(12).reshape(3, 4) * (r + 1) - 5).astype(dtype)
        a = cupy.asarray(host)
        everyone = [(np.arange(12).reshape(3, 4) * (q + 1) - 5).astype(dtype) for q in range(n)]
        for op, ref in [
            ("sum", sum(everyone)),
            ("max", np.maximum.reduce(everyone)),
            ("min", np.minimum.reduce(everyone)),
            ("mean", sum(everyone) / n),
        ]:
            got = dist.all_reduce(a, op=op)
            assert type(got) is cupy.ndarray and got.shape == a.shape, type(got)
            np.testing.assert_allclose(got.get(), ref, rtol=1e-6)
        np.testing.assert_array_equal(a.get(), host)
        t = cupy.asarray(np.arange(8.0).reshape(2, 4) + r)[:, ::2]  # not contiguous
        np.testing.assert_array_equal(
            dist.all_reduce(t).get(), n * (np.arange(8.0).reshape(2, 4)[:, ::2]) + sum(range(n))
        )
    g = _nccl.group()
    assert g.device == 0 and fake.communicators == 1
    root = n - 1
    mine = cupy.asarray(np.full((2, 3), 10.0 * r))
    got = dist.broadcast(mine, root=root)
    np.testing.assert_array_equal(got.get(), np.full((2, 3), 10.0 * root))
    np.testing.assert_array_equal(mine.get(), np.full((2, 3), 10.0 * r))
    st = dist.all_gather(cupy.asarray(np.full((2, 2), r, dtype=np.int32)))
    assert st.shape == (n, 2, 2) and all((st.get()[q] == q).all() for q in range(n))
    cat = dist.all_gather(cupy.asarray(np.full((3, r + 1), float(r))), axis=1)
    np.testing.assert_array_equal(cat.get(), np.concatenate([np.full((3, q + 1), float(q)) for q in range(n)], axis=1))
    for call, msg in [
        (lambda: dist.all_reduce(cupy.asarray(np.zeros(2, dtype=np.complex128))), "NCCL cannot carry"),
        (lambda: dist.all_reduce(cupy.asarray(np.zeros(2 + r))), "rank 0 has"),
    ]:
        try:
            call()
        except (TypeError, ValueError) as e:
            assert msg in str(e), str(e)
        else:
            raise AssertionError(msg)
    assert fake.communicators == 1  # one communicator for the job
    if r == 0:
        open(os.path.join(out, "nccl.ok"), "w").write("ok")


if __name__ == "__main__":
    dist.init()
    scenario, out, *args = sys.argv[1:]
    {
        "collectives": collectives,
        "train": train,
        "mismatch": mismatch,
        "raise": raising,
        "ckpt_save": ckpt_save,
        "ckpt_resume": ckpt_resume,
        "rl": rl_sweep,
        "nccl_standin": nccl_standin,
    }[scenario](out, *args)
