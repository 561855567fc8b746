"""deepkern's Python layer on "device" arrays, with a strict numpy-backed stand-in for cupy.

tests/cupy_standin/ holds a TEST DOUBLE named `cupy` (read its docstring): its arrays refuse
implicit conversion to numpy and any mixing with numpy arrays, as real cupy's do, and no CUDA
device is visible through it, so no deepkern kernel can run. This file installs it as `cupy` for
its own tests only (module fixture; sys.modules and sys.path are restored afterwards, and
deepkern's CUDA module is hidden so a stand-in pointer can never reach a real one).

What it checks: every pure-Python layer, loss, optimizer, schedule, fit/evaluate/predict,
save/load and dk.bptt gives on stand-in arrays the numbers it gives on numpy (float64, same
seeds); after .to('cuda') every parameter, gradient and optimizer state is a device array;
mixing numpy and device arrays is a clear TypeError; the kernel-backed layers refuse device
arrays with a clear error. What it cannot check: anything a GPU does (docs/RELIABILITY.md).
"""

import os
import sys
import types

import deepkern as dk
import deepkern._backend as backend
import numpy as np
import pytest
from deepkern._backend import is_cupy_array
from helpers import assert_close

nn = dk.nn
optim = dk.optim
F64 = np.float64
_STANDIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cupy_standin")


def _cupy_modules():
    return [k for k in sys.modules if k in ("cupy", "cupyx") or k.startswith(("cupy.", "cupyx."))]


@pytest.fixture(scope="module", autouse=True)
def cp():
    saved = {k: sys.modules.pop(k) for k in _cupy_modules()}  # a real cupy, if one was imported
    sys.path.insert(0, _STANDIN)
    mp = pytest.MonkeyPatch()
    try:
        import cupy

        assert cupy.__file__.startswith(_STANDIN), cupy.__file__
        mp.setattr(backend, "_cuda", None)  # never hand a stand-in array to a real CUDA module
        mp.setattr(backend, "_CUDA", None)
        yield cupy
    finally:
        mp.undo()
        sys.path.remove(_STANDIN)
        for k in _cupy_modules():
            del sys.modules[k]
        sys.modules.update(saved)


def host(a):
    """numpy copy of a device array; fails if `a` is not one (the point of most checks here)."""
    assert is_cupy_array(a), f"expected a device (cupy) array, got {type(a).__name__}"
    return a.get()


def dev(cp, a):
    return tuple(dev(cp, e) for e in a) if isinstance(a, tuple) else None if a is None else cp.asarray(a)


def close(d, ref, what):
    """Device result d against the numpy run's ref (tuples and None alike)."""
    if isinstance(ref, tuple):
        assert isinstance(d, tuple) and len(d) == len(ref), what
        for i, (a, b) in enumerate(zip(d, ref)):
            close(a, b, f"{what}[{i}]")
    elif ref is None:
        assert d is None, what
    else:
        assert_close(host(d), ref, F64, what=what)


def twin(make):
    """(numpy layer, the same layer on the device) with identical parameters."""
    a, b = make(), make()
    b.load_state_dict(a.state_dict())
    return a, b.to("cuda")


def assert_all_on_device(model, opt=None):
    for n, p in model.named_parameters():
        assert is_cupy_array(p.value), f"parameter {n} is {type(p.value).__name__}"
        assert p.grad is None or is_cupy_array(p.grad), f"grad of {n} is {type(p.grad).__name__}"
    for st in opt.state if opt is not None else []:
        for k, v in st.items():
            if hasattr(v, "shape"):
                assert is_cupy_array(v), f"optimizer state {k!r} is {type(v).__name__}"


# -- the stand-in itself is as strict as cupy (a lenient double would make every test here worthless)


def test_standin_is_strict_like_cupy(cp):
    a = cp.asarray(np.arange(6.0).reshape(2, 3))
    assert is_cupy_array(a) and dk.get_array_module(a) is cp and not dk.cuda_available()
    for bad in (
        lambda: np.asarray(a),
        lambda: np.ascontiguousarray(a),
        lambda: np.zeros(3) + a[0],
        lambda: a[0] + np.zeros(3),
        lambda: a.__iadd__(np.ones((2, 3))),
        lambda: cp.exp(np.ones(2)),
        lambda: cp.concatenate([a, np.ones((2, 3))]),
        lambda: a[0] == np.zeros(3),
    ):
        with pytest.raises(TypeError):
            bad()
    with pytest.raises(ValueError, match="non-scalar numpy"):
        a[0] = np.ones(3)
    # what cupy allows: scalars, numpy scalars, 0-d numpy in comparisons, numpy ufuncs/functions dispatched
    for ok in (a * 2.0, np.float32(2) * a, np.exp(a), np.sum(a), a.sum(), a[0, 0], a > np.array(1.0), a @ a.T):
        assert is_cupy_array(ok)
    assert float(a.sum()) == 15.0 and np.shape(a) == (2, 3) and type(a.get()) is np.ndarray
    assert is_cupy_array(cp.random.RandomState(0).random_sample((2,), dtype=np.float32))


# -- layers: same numbers on numpy and on the device ------------------------------------------------


def _ln():
    m = nn.LayerNorm(5, dtype=F64)
    m.weight.value[:] = np.linspace(0.5, 1.5, 5)
    m.bias.value[:] = np.linspace(-0.2, 0.2, 5)
    return m


LAYERS = {  # name: (factory, input shape)
    "dense": (lambda: nn.Dense(5, 4, seed=1, dtype=F64), (3, 5)),
    "dense_3d_nobias": (lambda: nn.Dense(5, 4, bias=False, seed=1, dtype=F64), (2, 3, 5)),
    "relu": (nn.ReLU, (3, 5)),
    "sigmoid": (nn.Sigmoid, (3, 5)),
    "tanh": (nn.Tanh, (3, 5)),
    "leaky_relu": (lambda: nn.LeakyReLU(0.1), (3, 5)),
    "softmax": (nn.Softmax, (2, 3, 5)),
    "flatten": (nn.Flatten, (2, 3, 4)),
    "dropout_p0": (lambda: nn.Dropout(0.0), (3, 5)),
    "layernorm": (_ln, (2, 3, 5)),
    "posenc_sinusoidal": (lambda: nn.PositionalEncoding(5, 9, dtype=F64), (2, 4, 5)),
    "posenc_learned": (lambda: nn.PositionalEncoding(5, 9, kind="learned", seed=2, dtype=F64), (2, 4, 5)),
    "simple_rnn": (lambda: nn.SimpleRNN(5, 4, seed=0, dtype=F64), (2, 3, 5)),
    "simple_rnn_seq_relu_identity": (
        lambda: nn.SimpleRNN(
            5, 4, return_sequences=True, activation="relu", recurrent_init="identity", seed=0, dtype=F64
        ),
        (2, 3, 5),
    ),
    "simple_rnn_state": (
        lambda: nn.SimpleRNN(5, 4, return_sequences=True, return_state=True, seed=0, dtype=F64),
        (2, 3, 5),
    ),
    "sequential": (
        lambda: nn.Sequential(
            [nn.Dense(5, 6, seed=0, dtype=F64), nn.Tanh(), _ln_6(), nn.Dense(6, 3, seed=1, dtype=F64)]
        ),
        (4, 5),
    ),
    "batchnorm2d": (lambda: nn.BatchNorm2D(3, dtype=F64), (2, 3, 4, 5)),
}

# Composed from GEMMs and array ops inside the functional layer (no kernel of their own): on a CUDA
# build they run on device arrays even where that build has no kernel for the op.
COMPOSED = {
    "gru": (lambda: nn.GRU(5, 4, seed=0, dtype=F64), (2, 3, 5)),
    "gru_bidirectional_stacked": (
        lambda: nn.GRU(5, 4, num_layers=2, bidirectional=True, return_sequences=True, seed=0, dtype=F64),
        (2, 3, 5),
    ),
    "lstm_proj": (lambda: nn.LSTM(5, 4, proj_size=2, return_sequences=True, seed=0, dtype=F64), (2, 3, 5)),
}


@pytest.mark.parametrize("name", COMPOSED)
def test_composed_layers_run_on_device_without_kernels(cp, rng, name, monkeypatch):
    monkeypatch.setattr(backend, "_cuda", types.SimpleNamespace())  # a CUDA build without these kernels
    monkeypatch.setattr(backend, "_CUDA", None)
    make, shape = COMPOSED[name]
    a, b = twin(make)
    x = rng.standard_normal(shape)
    ya = a.forward(x)
    close(b.forward(cp.asarray(x)), ya, f"{name} forward")
    dy = rng.standard_normal(ya.shape)
    close(b.backward(cp.asarray(dy)), a.backward(dy), f"{name} dx")
    for (n, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        close(pb.grad, pa.grad, f"{name} grad {n}")


def test_sdpa_composed_path_on_device(cp, rng, monkeypatch):
    monkeypatch.setattr(backend, "_cuda", types.SimpleNamespace())
    monkeypatch.setattr(backend, "_CUDA", None)
    q, k, v = rng.standard_normal((2, 4, 3, 5)), rng.standard_normal((2, 2, 6, 5)), rng.standard_normal((2, 2, 6, 3))
    m = rng.standard_normal((3, 6))
    kw = dict(dropout_p=0.3, enable_gqa=True, seed=2, attn_mask_requires_grad=True, return_ctx=True)
    oa, ca = dk.scaled_dot_product_attention(q, k, v, m, **kw)
    ob, cb = dk.scaled_dot_product_attention(*dev(cp, (q, k, v, m)), **kw)
    close(ob, oa, "sdpa dropout forward")
    dout = rng.standard_normal(oa.shape)
    close(
        dk.scaled_dot_product_attention_backward(cb, cp.asarray(dout)),
        dk.scaled_dot_product_attention_backward(ca, dout),
        "sdpa dropout grads",
    )
    with pytest.raises(NotImplementedError, match="has no CUDA kernel yet"):  # the fused kernel's case
        dk.scaled_dot_product_attention(*dev(cp, (q, k, v)), enable_gqa=True)


def _ln_6():
    return nn.LayerNorm(6, dtype=F64)


@pytest.mark.parametrize("name", LAYERS)
def test_layer_forward_backward_match_numpy(cp, rng, name):
    make, shape = LAYERS[name]
    a, b = twin(make)
    x = rng.standard_normal(shape)
    ya = a.forward(x)
    yb = b.forward(cp.asarray(x))
    close(yb, ya, f"{name} forward")
    dy = tuple(rng.standard_normal(y.shape) for y in ya) if isinstance(ya, tuple) else rng.standard_normal(ya.shape)
    close(b.backward(dev(cp, dy)), a.backward(dy), f"{name} dx")
    for (n, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        close(pb.grad, pa.grad, f"{name} grad {n}")
    close(b.forward(cp.asarray(x), training=False), a.forward(x, training=False), f"{name} inference")
    assert_all_on_device(b)


def test_simple_rnn_initial_state_and_step_api(cp, rng):
    a, b = twin(lambda: nn.SimpleRNN(3, 4, return_state=True, seed=0, dtype=F64))
    x, h0 = rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 4))
    close(b.forward(cp.asarray(x), cp.asarray(h0)), a.forward(x, h0), "forward from h0")
    dy = (rng.standard_normal((2, 4)), rng.standard_normal((2, 4)))
    close(b.backward(dev(cp, dy)), a.backward(dy), "dx")
    close(b.state_grad, a.state_grad, "state_grad")
    ya, sa, ca = a.step(x[:, 0], a.zero_state(2))
    yb, sb, cb = b.step(cp.asarray(x[:, 0]), b.zero_state(2))
    close(yb, ya, "step")
    close(b.step_backward(cb, cp.asarray(dy[0]), None), a.step_backward(ca, dy[0], None), "step_backward")


@pytest.mark.parametrize("cls", ["Embedding", "OneHot"])
def test_index_layers_match_numpy(cp, rng, cls):
    make = (lambda: nn.Embedding(6, 4, seed=0, dtype=F64)) if cls == "Embedding" else (lambda: nn.OneHot(6))
    a, b = twin(make)
    idx = rng.integers(0, 6, (3, 5))  # repeated indices: the weight gradient must accumulate them
    ya = a.forward(idx)
    close(b.forward(cp.asarray(idx)), ya, f"{cls} forward")
    dy = rng.standard_normal(ya.shape)
    assert a.backward(dy) is None and b.backward(cp.asarray(dy)) is None
    for pa, pb in zip(a.parameters(), b.parameters()):
        close(pb.grad, pa.grad, f"{cls} weight grad")


def test_dropout_on_device(cp, rng):
    d = nn.Dropout(0.4, seed=3)
    x = cp.asarray(rng.standard_normal((50, 40)))
    y = d.forward(x)
    mask = host(d.backward(cp.ones((50, 40))))
    assert set(np.unique(mask)) == {0.0, 1 / 0.6} and 0.3 < (mask == 0).mean() < 0.5
    assert_close(host(y), x.get() * mask, F64, what="dropout forward")
    again = nn.Dropout(0.4, seed=3)
    assert np.array_equal(host(again.forward(x)), host(y)), "a seeded Dropout must reproduce on the device"
    assert d.forward(x, training=False) is x or np.array_equal(host(d.forward(x, training=False)), x.get())


ATTENTION = {
    "bahdanau": lambda: nn.BahdanauAttention(4, 3, units=5, seed=0, dtype=F64),
    "luong_dot": lambda: nn.LuongAttention(score="dot"),
    "luong_general": lambda: nn.LuongAttention(4, 3, score="general", seed=0, dtype=F64),
    "luong_concat": lambda: nn.LuongAttention(4, 3, score="concat", units=5, seed=0, dtype=F64),
}


@pytest.mark.parametrize("name", ATTENTION)
@pytest.mark.parametrize("multi_step", [False, True])
def test_attention_matches_numpy(cp, rng, name, multi_step):
    a, b = twin(ATTENTION[name])
    Dk = 4 if name == "luong_dot" else 3
    q = rng.standard_normal((2, 3, 4) if multi_step else (2, 4))
    k, v = rng.standard_normal((2, 6, Dk)), rng.standard_normal((2, 6, 2))
    mask = np.ones((2, 6), bool)
    mask[1, 4:] = False
    ca = a.forward(q, k, v, mask)
    close(b.forward(*dev(cp, (q, k, v, mask))), ca, f"{name} context")
    close(b.alignment, a.alignment, f"{name} alignment")
    dc = rng.standard_normal(ca.shape)
    close(b.backward(cp.asarray(dc)), a.backward(dc), f"{name} grads")
    for pa, pb in zip(a.parameters(), b.parameters()):
        close(pb.grad, pa.grad, f"{name} parameter grad")


@pytest.mark.parametrize("kind", ["bahdanau", "luong"])
def test_attention_decoder_matches_numpy(cp, rng, kind):
    def make():
        if kind == "bahdanau":
            return nn.AttentionDecoder(
                nn.SimpleRNN(3 + 4, 4, seed=0, dtype=F64), nn.BahdanauAttention(4, 4, seed=1, dtype=F64)
            )
        return nn.AttentionDecoder(
            nn.SimpleRNN(3, 4, seed=0, dtype=F64), nn.LuongAttention(4, score="general", seed=1, dtype=F64)
        )

    a, b = twin(make)
    x, keys, h0 = rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 6, 4)), rng.standard_normal((2, 4))
    out = a.forward(x, keys, initial_state=h0)
    close(b.forward(cp.asarray(x), cp.asarray(keys), initial_state=cp.asarray(h0)), out, "decoder out")
    dout = rng.standard_normal(out.shape)
    close(b.backward(cp.asarray(dout)), a.backward(dout), "decoder grads")
    close(b.state_grad, a.state_grad, "decoder state_grad")
    for (n, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        close(pb.grad, pa.grad, f"decoder grad {n}")
    sa = a.decode_step(x[:, 0], None, keys)
    close(b.decode_step(cp.asarray(x[:, 0]), None, cp.asarray(keys)), sa, "decode_step")


# -- losses ----------------------------------------------------------------------------------------


def _loss_cases(rng):
    z = rng.standard_normal((4, 3, 5))
    p = 1 / (1 + np.exp(-rng.standard_normal((6, 2))))
    return [
        ("ce_labels", nn.SoftmaxCrossEntropy, z, rng.integers(0, 5, (4, 3))),
        ("ce_labels_float", nn.SoftmaxCrossEntropy, z[0], rng.integers(0, 5, 3).astype(F64)),
        ("ce_probs", nn.SoftmaxCrossEntropy, z, np.exp(z) / np.exp(z).sum(-1, keepdims=True)),
        ("mse", nn.MSE, z, rng.standard_normal(z.shape)),
        ("bce", nn.BinaryCrossEntropy, p, (rng.random(p.shape) > 0.5).astype(F64)),
        ("bce_logits", lambda: nn.BinaryCrossEntropy(from_logits=True), z, (rng.random(z.shape) > 0.5) * 1.0),
    ]


def test_losses_match_numpy(cp, rng):
    for name, make, pred, target in _loss_cases(rng):
        la, lb = make(), make()
        va = la.forward(pred, target)
        vb = lb.forward(cp.asarray(pred), cp.asarray(target))
        assert type(vb) is float and vb == pytest.approx(va, rel=1e-12), name
        close(lb.backward(), la.backward(), f"{name} grad")


# -- training: fit on the device gives the numpy run's history -------------------------------------

OPTIMIZERS = {
    "sgd_momentum_wd": (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-3), "step"),
    "sgd_nesterov": (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True), "cosine"),
    "adam": (lambda ps: optim.Adam(ps, lr=0.02, weight_decay=1e-3), "exp"),
    "adam_amsgrad": (lambda ps: optim.Adam(ps, lr=0.02, amsgrad=True), None),
    "adamw": (lambda ps: optim.AdamW(ps, lr=0.02), "step"),
    "rmsprop": (lambda ps: optim.RMSProp(ps, lr=0.01), "cosine"),
    "rmsprop_centered_momentum": (
        lambda ps: optim.RMSProp(ps, lr=0.01, centered=True, momentum=0.5, weight_decay=1e-3),
        None,
    ),
    "adagrad": (lambda ps: optim.Adagrad(ps, lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1), "exp"),
    "adadelta": (lambda ps: optim.Adadelta(ps, lr=1.0, weight_decay=1e-3), "step"),
}
SCHEDULES = {
    None: None,
    "step": lambda o: optim.StepLR(o, 2, 0.5),
    "exp": lambda o: optim.ExponentialLR(o, 0.8),
    "cosine": lambda o: optim.CosineAnnealingLR(o, 4),
}


def _mlp(dtype=F64):
    return nn.Sequential(
        [
            nn.Dense(4, 8, seed=0, dtype=dtype),
            nn.ReLU(),
            nn.Dense(8, 8, seed=1, dtype=dtype),
            nn.Tanh(),
            nn.Dense(8, 3, seed=2, dtype=dtype),
        ]
    )


def _rnn_classifier():
    return nn.Sequential(
        [
            nn.Embedding(7, 5, seed=0, dtype=F64),
            nn.SimpleRNN(5, 6, seed=1, dtype=F64),
            nn.Dense(6, 3, seed=2, dtype=F64),
        ]
    )


def _rnn_tagger():
    return nn.Sequential(
        [
            nn.Embedding(7, 5, seed=0, dtype=F64),
            nn.SimpleRNN(5, 6, return_sequences=True, seed=1, dtype=F64),
            nn.LayerNorm(6, dtype=F64),
            nn.Dense(6, 7, seed=2, dtype=F64),
        ]
    )


def _train(cp, make, x, y, loss, opt_name, device, epochs=4, **fit_kw):
    model = make()
    make_opt, sched = OPTIMIZERS[opt_name]
    if device:
        model.to("cuda")
        x, y = cp.asarray(x), cp.asarray(y)
        if "validation_data" in fit_kw:
            fit_kw["validation_data"] = dev(cp, fit_kw["validation_data"])
    opt = make_opt(model.parameters())
    h = model.fit(
        x,
        y,
        loss(),
        opt,
        epochs=epochs,
        batch_size=16,
        progress=False,
        seed=5,
        scheduler=SCHEDULES[sched](opt) if sched else None,
        **fit_kw,
    )
    return model, opt, h


def _same_history(hd, hn):
    assert hd.keys() == hn.keys()
    for k in hn:
        assert hd[k] == pytest.approx(hn[k], rel=1e-9, abs=1e-12), k


@pytest.mark.parametrize("opt_name", OPTIMIZERS)
def test_mlp_fit_matches_numpy_for_every_optimizer(cp, rng, opt_name):
    x, y = rng.standard_normal((60, 4)), rng.integers(0, 3, 60)
    kw = dict(validation_split=0.25, clip_norm=1.0 if "sgd" in opt_name else None)
    mn, _, hn = _train(cp, _mlp, x, y, nn.SoftmaxCrossEntropy, opt_name, False, **kw)
    md, od, hd = _train(cp, _mlp, x, y, nn.SoftmaxCrossEntropy, opt_name, True, **kw)
    _same_history(hd, hn)
    assert_all_on_device(md, od)
    for (n, pn), (_, pd) in zip(mn.named_parameters(), md.named_parameters()):
        close(pd.value, pn.value, f"trained {n}")


@pytest.mark.parametrize(
    "make,opt_name",
    [
        (_rnn_classifier, "adam"),
        (_rnn_classifier, "sgd_nesterov"),
        (_rnn_tagger, "rmsprop_centered_momentum"),
        (_rnn_tagger, "adagrad"),
    ],
)
def test_rnn_fit_matches_numpy(cp, rng, make, opt_name):
    x = rng.integers(0, 7, (48, 6))
    y = rng.integers(0, 3, 48) if make is _rnn_classifier else np.roll(x, 1, axis=1)
    vx, vy = x[:16], y[:16]
    kw = dict(
        validation_data=(vx, vy), clip_norm=0.5, early_stopping=optim.EarlyStopping(patience=1, monitor="val_loss")
    )
    mn, _, hn = _train(cp, make, x, y, nn.SoftmaxCrossEntropy, opt_name, False, epochs=5, **kw)
    kw["early_stopping"] = optim.EarlyStopping(patience=1, monitor="val_loss")
    md, od, hd = _train(cp, make, x, y, nn.SoftmaxCrossEntropy, opt_name, True, epochs=5, **kw)
    _same_history(hd, hn)
    assert_all_on_device(md, od)
    for (n, pn), (_, pd) in zip(mn.named_parameters(), md.named_parameters()):
        close(pd.value, pn.value, f"trained (best restored) {n}")


@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_regression_and_binary_fit_match_numpy(cp, rng, loss):
    x = rng.standard_normal((40, 4))
    if loss == "mse":
        make, y, L = (
            (
                lambda: nn.Sequential(
                    [nn.Dense(4, 6, seed=0, dtype=F64), nn.Sigmoid(), nn.Dense(6, 2, seed=1, dtype=F64)]
                )
            ),
            rng.standard_normal((40, 2)),
            nn.MSE,
        )
    else:
        make, y, L = (
            (lambda: nn.Sequential([nn.Dense(4, 1, seed=0, dtype=F64), nn.Sigmoid()])),
            (x[:, :1] > 0).astype(F64),
            nn.BinaryCrossEntropy,
        )
    _, _, hn = _train(cp, make, x, y, L, "adam", False, validation_split=0.2)
    md, od, hd = _train(cp, make, x, y, L, "adam", True, validation_split=0.2)
    _same_history(hd, hn)
    assert_all_on_device(md, od)


def test_float32_training_stays_float32_on_device(cp, rng):
    x, y = rng.standard_normal((48, 4)).astype(np.float32), rng.integers(0, 3, 48)
    for name in ("adam", "rmsprop_centered_momentum", "adadelta", "adagrad", "sgd_nesterov"):
        _, _, hn = _train(cp, lambda: _mlp(np.float32), x, y, nn.SoftmaxCrossEntropy, name, False, epochs=2)
        md, od, hd = _train(cp, lambda: _mlp(np.float32), x, y, nn.SoftmaxCrossEntropy, name, True, epochs=2)
        assert hd["loss"] == pytest.approx(hn["loss"], rel=1e-4), name
        assert_all_on_device(md, od)
        for p, st in zip(md.parameters(), od.state):
            assert p.value.dtype == np.float32 and p.grad.dtype == np.float32, name
            for k, v in st.items():
                assert not hasattr(v, "dtype") or v.dtype == np.float32, f"{name}: state {k!r} is {v.dtype}"


def test_optimizer_state_follows_parameters_moved_after_training(cp, rng):
    """Train on the CPU, move the model to the GPU, keep training with the same optimizer (and back)."""
    x, y = rng.standard_normal((32, 4)), rng.integers(0, 3, 32)
    for name in OPTIMIZERS:
        ref = _mlp()
        oref = OPTIMIZERS[name][0](ref.parameters())
        model = _mlp()
        opt = OPTIMIZERS[name][0](model.parameters())
        kw = dict(epochs=1, batch_size=16, progress=False, seed=1)
        ref.fit(x, y, "cross_entropy", oref, **kw)
        model.fit(x, y, "cross_entropy", opt, **kw)
        model.to("cuda")
        h = model.fit(cp.asarray(x), cp.asarray(y), "cross_entropy", opt, **kw)
        assert_all_on_device(model, opt)
        assert h["loss"] == pytest.approx(ref.fit(x, y, "cross_entropy", oref, **kw)["loss"], rel=1e-9), name
        model.to("cpu")
        h = model.fit(x, y, "cross_entropy", opt, **kw)
        assert h["loss"] == pytest.approx(ref.fit(x, y, "cross_entropy", oref, **kw)["loss"], rel=1e-9), name


def test_clipping_on_device_grads(cp, rng):
    a, b = twin(_mlp)
    x, dy = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
    a.forward(x)
    a.backward(dy)
    b.forward(cp.asarray(x))
    b.backward(cp.asarray(dy))
    for norm_type in (2.0, 1.0, float("inf")):
        na = optim.clip_grad_norm(a.parameters(), 0.05, norm_type)
        assert optim.clip_grad_norm(b.parameters(), 0.05, norm_type) == pytest.approx(na, rel=1e-12)
    optim.clip_grad_value(a, 0.01)
    optim.clip_grad_value(b, 0.01)
    for pa, pb in zip(a.parameters(), b.parameters()):
        close(pb.grad, pa.grad, "clipped grad")
    assert_all_on_device(b)


# -- dk.bptt ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kw", [dict(), dict(fused=False), dict(truncate=2), dict(truncate=3, mode="chunk")])
def test_bptt_matches_numpy(cp, rng, kw):
    a, b = twin(lambda: nn.SimpleRNN(3, 4, seed=0, dtype=F64))
    x, target, h0 = rng.standard_normal((2, 6, 3)), rng.standard_normal((2, 6, 4)), rng.standard_normal((2, 4))
    ra = dk.bptt(a, x, nn.MSE(), target=target, initial_state=h0, **kw)
    rb = dk.bptt(b, cp.asarray(x), nn.MSE(), target=cp.asarray(target), initial_state=cp.asarray(h0), **kw)
    assert rb.loss == pytest.approx(ra.loss, rel=1e-12)
    for field in ("outputs", "state", "dx", "state_grad"):
        close(getattr(rb, field), getattr(ra, field), f"bptt {field}")
    for pa, pb in zip(a.parameters(), b.parameters()):
        close(pb.grad, pa.grad, "bptt grad")


def test_bptt_through_a_sequential_head_matches_numpy(cp, rng):
    a, b = twin(
        lambda: nn.Sequential(
            [nn.SimpleRNN(3, 4, return_sequences=True, seed=0, dtype=F64), nn.Dense(4, 5, seed=1, dtype=F64)]
        )
    )
    x, labels = rng.standard_normal((2, 7, 3)), rng.integers(0, 5, (2, 7))
    ra = dk.bptt(a, x, nn.SoftmaxCrossEntropy(), target=labels, truncate=3)
    rb = dk.bptt(b, cp.asarray(x), nn.SoftmaxCrossEntropy(), target=cp.asarray(labels), truncate=3)
    assert rb.loss == pytest.approx(ra.loss, rel=1e-12)
    close(rb.dx, ra.dx, "dx")
    for pa, pb in zip(a.parameters(), b.parameters()):
        close(pb.grad, pa.grad, "grad")


# -- predict / evaluate / summary / save / load / state dicts --------------------------------------


def test_predict_evaluate_save_load_round_trip(cp, rng, tmp_path):
    cpu, gpu = twin(_mlp)
    x, y = rng.standard_normal((37, 4)), rng.integers(0, 3, 37)
    ref = cpu.predict(x)
    close(gpu.predict(cp.asarray(x)), ref, "predict")
    close(gpu.predict(cp.asarray(x), batch_size=8), ref, "batched predict")
    ea, eb = (
        cpu.evaluate(x, y, "cross_entropy", batch_size=8),
        gpu.evaluate(cp.asarray(x), cp.asarray(y), "cross_entropy", batch_size=8),
    )
    assert eb == pytest.approx(ea, rel=1e-12)
    assert "Total params" in gpu.summary(input_shape=(4,), print_fn=None)
    gpu.save(tmp_path / "m.npz")
    loaded = nn.Sequential.load(tmp_path / "m.npz")
    assert loaded.device == "cpu"
    assert_close(loaded.predict(x), ref, F64, what="loaded on the CPU")
    close(loaded.to("cuda").predict(cp.asarray(x)), ref, "loaded, moved to the device")
    state = gpu.state_dict()
    assert all(type(v) is np.ndarray for v in state.values())
    cpu2, gpu2 = _mlp(), _mlp().to("cuda")
    gpu2.load_state_dict(state)  # numpy state into a device model: copied to the device
    cpu2.load_state_dict({k: cp.asarray(v) for k, v in state.items()})  # device state into a CPU model
    assert_all_on_device(gpu2)
    assert all(type(p.value) is np.ndarray for p in cpu2.parameters())
    close(gpu2.predict(cp.asarray(x)), ref, "device model from a numpy state_dict")
    assert_close(cpu2.predict(x), ref, F64, what="CPU model from a device state_dict")
    back = gpu.to("cpu")
    assert all(type(p.value) is np.ndarray for p in back.parameters())
    assert_close(back.predict(x), ref, F64, what="moved back to the CPU")


class _Double(nn.Layer):
    """A user layer without output_shape: summary() must learn its shape from a forward on the device."""

    def forward(self, x, training=True):
        return x * 2

    def backward(self, dy):
        return dy * 2


def test_summary_astype_and_torch_weights_on_device(cp, rng):
    model = nn.Sequential([nn.Dense(4, 3, seed=0, dtype=F64), _Double(), nn.SimpleRNN(3, 5, seed=1, dtype=F64)])
    model.to("cuda")
    text = model.summary(input_shape=(2, 4), print_fn=None)
    assert "(None, 2, 3)" in text and "(None, 5)" in text
    model.astype(np.float32)
    assert_all_on_device(model)
    assert all(p.dtype == np.float32 for p in model.parameters())
    torch = pytest.importorskip("torch")
    lin, rnn = torch.nn.Linear(4, 3).double(), torch.nn.RNN(3, 5, batch_first=True).double()
    state = {**{f"0.{k}": v for k, v in lin.state_dict().items()}, **{f"2.{k}": v for k, v in rnn.state_dict().items()}}
    model.astype(F64).load_torch_state_dict(state)
    assert_all_on_device(model)
    x = rng.standard_normal((3, 2, 4))
    with torch.no_grad():
        h = rnn(2 * lin(torch.tensor(x)))[1][0].numpy()
    close(model.predict(cp.asarray(x)).reshape(3, 5), h, "torch weights on the device")


# -- mixing devices is a clear TypeError -----------------------------------------------------------


def test_mixing_devices_raises_clear_type_errors(cp, rng):
    x, y = rng.standard_normal((8, 4)), rng.integers(0, 3, 8)
    gpu, cpu = _mlp().to("cuda"), _mlp()
    with pytest.raises(TypeError, match=r"'x' is a numpy array \(CPU\) but the model's parameters are a cupy array"):
        gpu.forward(x)
    with pytest.raises(TypeError, match=r"'x' is a cupy array \(GPU\) but the model's parameters are a numpy array"):
        cpu.predict(cp.asarray(x))
    with pytest.raises(TypeError, match=r"Dense.forward: 'x' is a numpy array \(CPU\) but the layer's parameters"):
        gpu[0].forward(x)
    out = gpu.forward(cp.asarray(x))
    for loss in (nn.SoftmaxCrossEntropy(), nn.MSE()):
        target = y if isinstance(loss, nn.SoftmaxCrossEntropy) else rng.standard_normal((8, 3))
        with pytest.raises(TypeError, match=r"'pred' is a cupy array \(GPU\) but 'target' is a numpy array"):
            loss.forward(out, target)
    with pytest.raises(TypeError, match=r"'pred' is a numpy array \(CPU\) but 'target' is a cupy array"):
        nn.BinaryCrossEntropy(from_logits=True).forward(rng.standard_normal(3), cp.zeros(3))
    with pytest.raises(TypeError, match=r"fit: 'x' is a cupy array \(GPU\) but 'y' is a numpy array"):
        gpu.fit(cp.asarray(x), y, "cross_entropy", "adam", progress=False)
    with pytest.raises(TypeError, match=r"fit: 'x' is a numpy array \(CPU\) but 'y' is a cupy array"):
        cpu.fit(x, cp.asarray(y), "cross_entropy", "adam", progress=False)
    with pytest.raises(TypeError, match=r"fit: 'x' is a cupy array \(GPU\) but 'validation_x' is a numpy array"):
        gpu.fit(cp.asarray(x), cp.asarray(y), "cross_entropy", "adam", progress=False, validation_data=(x, y))
    with pytest.raises(TypeError, match=r"evaluate: 'x' is a numpy array \(CPU\) but 'y' is a cupy array"):
        cpu.evaluate(x, cp.asarray(y), "cross_entropy")


def test_fit_and_evaluate_accept_list_targets_with_device_inputs(cp, rng):
    # a list belongs to no device: converted onto x's device as before the device checks (it was
    # refused as "a numpy array (CPU)")
    x, y = rng.standard_normal((8, 4)), rng.integers(0, 3, 8)
    gpu = _mlp().to("cuda")
    h = gpu.fit(
        cp.asarray(x),
        y.tolist(),
        "cross_entropy",
        "adam",
        epochs=2,
        progress=False,
        validation_data=(cp.asarray(x), y.tolist()),
    )
    assert len(h["loss"]) == 2
    assert np.isfinite(gpu.evaluate(cp.asarray(x), y.tolist(), "cross_entropy")["loss"])


def test_mixing_devices_in_other_layer_inputs_raises_clear_type_errors(cp, rng):
    """initial states, attention keys/values: the argument named, on the CPU and on the GPU."""
    x, h0, keys = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5)), rng.standard_normal((2, 6, 5))
    rnn_gpu, rnn_cpu = nn.SimpleRNN(4, 5, dtype=F64).to("cuda"), nn.SimpleRNN(4, 5, dtype=F64)
    with pytest.raises(
        TypeError,
        match=r"SimpleRNN.forward: 'initial_state' is a numpy array \(CPU\) but the layer "
        r"computes on the GPU",
    ):
        rnn_gpu.forward(cp.asarray(x), h0)
    with pytest.raises(
        TypeError,
        match=r"SimpleRNN.forward: 'initial_state' is a cupy array \(GPU\) but the layer "
        r"computes on the CPU",
    ):
        rnn_cpu.forward(x, cp.asarray(h0))
    att_gpu, att_cpu = nn.BahdanauAttention(5, dtype=F64).to("cuda"), nn.LuongAttention(score="dot")
    with pytest.raises(TypeError, match=r"BahdanauAttention.forward: 'keys' is a numpy array \(CPU\)"):
        att_gpu.forward(cp.asarray(h0), keys)
    with pytest.raises(TypeError, match=r"LuongAttention.forward: 'values' is a cupy array \(GPU\)"):
        att_cpu.forward(h0, keys, cp.asarray(keys))
    for kw in (
        dict(x=x, dy=cp.zeros((2, 3, 5))),
        dict(x=cp.asarray(x), dy=rng.standard_normal((2, 3, 5))),
        dict(x=cp.asarray(x), dy=cp.zeros((2, 3, 5)), initial_state=(h0,), fused=False),
    ):
        with pytest.raises(
            TypeError,
            match=r"bptt: '(x|dy|initial_state)' is a numpy array \(CPU\) but the model is "
            r"on the GPU",
        ):
            dk.bptt(rnn_gpu, **kw)
    with pytest.raises(TypeError, match=r"bptt: 'x' is a cupy array \(GPU\) but the model is on the CPU"):
        dk.bptt(rnn_cpu, cp.asarray(x), dy=np.zeros((2, 3, 5)))
    mha = nn.MultiHeadAttention(4, 2, dtype=F64).to("cuda")
    with pytest.raises(TypeError, match=r"MultiHeadAttention.forward: 'key' is a numpy array \(CPU\)"):
        mha.forward(cp.asarray(x), x)


# -- kernel-backed layers refuse device arrays: no crash, no silent CPU fallback ----------------------

KERNEL_LAYERS = {
    "conv2d": (lambda: nn.Conv2D(2, 3, 3, seed=0, dtype=F64), (2, 2, 6, 6)),
    "max_pool2d": (lambda: nn.MaxPool2D(2), (2, 2, 6, 6)),
    "avg_pool2d": (lambda: nn.AvgPool2D(2), (2, 2, 6, 6)),
    "lstm": (lambda: nn.LSTM(3, 4, seed=0, dtype=F64), (2, 5, 3)),
    "lstm_stacked": (lambda: nn.LSTM(3, 4, num_layers=2, seed=0, dtype=F64), (2, 5, 3)),
    "multihead_attention": (lambda: nn.MultiHeadAttention(4, 2, seed=0, dtype=F64), (2, 5, 4)),
    "transformer_encoder": (lambda: nn.TransformerEncoderLayer(4, 2, 8, seed=0, dtype=F64), (2, 5, 4)),
}


@pytest.mark.parametrize("name", KERNEL_LAYERS)
def test_kernel_layers_refuse_device_arrays_clearly(cp, rng, name, monkeypatch):
    make, shape = KERNEL_LAYERS[name]
    layer = make().to("cuda")
    x = cp.asarray(rng.standard_normal(shape))
    # this build has no CUDA module at all
    with pytest.raises(RuntimeError, match="built without its CUDA module.*DEEPKERN_CUDA=ON"):
        layer.forward(x)
    # a CUDA build that lacks this op's kernel (what a GPU machine has today for most ops)
    monkeypatch.setattr(backend, "_cuda", types.SimpleNamespace())
    monkeypatch.setattr(backend, "_CUDA", None)
    with pytest.raises(NotImplementedError, match="has no CUDA kernel yet; run it on numpy arrays"):
        layer.forward(x)


def test_fingerprint_on_device_matches_the_cpu_kernel(cp, rng):
    """The array-op fingerprint the CUDA backend uses (_saved.xp_fingerprint) gives the C++
    kernel's value, so a ctx on the GPU watches the arrays a caller can reach (max pooling's
    returned indices) as on the CPU; a change is seen."""
    from deepkern import _cpu
    from deepkern._saved import check_unmodified, watch, xp_fingerprint

    for n in (0, 1, 5, 8, 13, 1000):
        for dt in (np.float32, np.float64, np.int64):
            a = (rng.standard_normal(n) * 100).astype(dt)
            assert xp_fingerprint(cp, dev(cp, a)) == _cpu.fingerprint(a) == xp_fingerprint(np, a)

    class _Backend:
        name, xp = "cuda", cp

    class _Ctx:
        op, backend, _fingerprints = "max_pool2d", _Backend(), {}

    idx = dev(cp, np.arange(12, dtype=np.int64).reshape(3, 4))
    ctx = _Ctx()
    watch(ctx, indices=(idx, idx))
    check_unmodified("max_pool2d_backward", ctx)
    idx[1, 2] = 0
    with pytest.raises(RuntimeError, match="'indices'.*modified in place"):
        check_unmodified("max_pool2d_backward", ctx)
