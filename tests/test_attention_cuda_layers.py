"""Attention layers train on cupy arrays (GPU kernels for scaled dot-product attention) and give the
numbers they give on numpy: a few SGD-momentum steps of MultiHeadAttention, TransformerEncoderLayer (causal
and masked) and the Bahdanau / Luong layers, losses and trained parameters compared.

Marked `cuda`: on the SIMT simulator with the cupy stand-in in CI, on a GPU with real cupy.
"""

import deepkern as dk
import numpy as np
import pytest
from helpers import assert_close

pytestmark = pytest.mark.cuda
nn, optim = dk.nn, dk.optim
F64 = np.float64


@pytest.fixture(scope="module")
def cp():
    return pytest.importorskip("cupy")


def _self_mask(rng, B, L):
    m = rng.random((B, 1, L, L)) < 0.8
    m[..., 0] = True
    return m


LAYERS = {
    "mha": (lambda dt: nn.MultiHeadAttention(16, 2, seed=0, dtype=dt), "self"),
    "mha_causal": (lambda dt: nn.MultiHeadAttention(16, 4, causal=True, seed=0, dtype=dt), "self"),
    "mha_masked": (lambda dt: nn.MultiHeadAttention(16, 2, seed=0, dtype=dt), "masked"),
    "encoder": (lambda dt: nn.TransformerEncoderLayer(16, 2, 24, seed=0, dtype=dt), "encoder"),
    "encoder_causal": (lambda dt: nn.TransformerEncoderLayer(16, 4, 24, causal=True, seed=0, dtype=dt), "encoder"),
    "bahdanau": (lambda dt: nn.BahdanauAttention(16, 16, units=8, seed=0, dtype=dt), "additive"),
    "luong_general": (lambda dt: nn.LuongAttention(16, 16, score="general", seed=0, dtype=dt), "additive"),
}


def _train(cp, name, dtype, data, device, steps=4):
    make, kind = LAYERS[name]
    layer = make(dtype)
    if device:
        layer.to("cuda")
        data = {k: None if v is None else cp.asarray(v) for k, v in data.items()}
    # SGD, not Adam: the key projection's bias has a gradient that is exactly 0 in exact arithmetic,
    # and Adam would scale the two devices' different rounding noise (1e-17) up to 1e-11 steps.
    opt = optim.SGD(layer.parameters(), lr=0.05, momentum=0.9)
    loss = nn.MSE()
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        if kind == "encoder":
            out = layer.forward(data["x"])
        elif kind == "additive":
            out = layer.forward(data["q"], data["x"], data["x"], data["mask"])
        else:
            out = layer.forward(data["x"], attn_mask=data["mask"] if kind == "masked" else None)
        losses.append(loss.forward(out, data["y"]))
        layer.backward(loss.backward())
        opt.step()
    return layer, losses, out


@pytest.mark.parametrize("name", LAYERS)
def test_layer_trains_on_device_like_numpy(cp, rng, name):
    B, L = 2, 19
    kind = LAYERS[name][1]
    data = {"x": rng.standard_normal((B, L, 16)), "mask": _self_mask(rng, B, L) if kind == "masked" else None}
    if kind == "additive":
        data["q"] = rng.standard_normal((B, 5, 16))
        data["mask"] = rng.random((B, L)) < 0.8
        data["y"] = rng.standard_normal((B, 5, 16))
    else:
        data["y"] = rng.standard_normal((B, L, 16))
    ln, hn, on = _train(cp, name, F64, data, False)
    ld, hd, od = _train(cp, name, F64, data, True)
    assert isinstance(od, cp.ndarray)
    assert hd == pytest.approx(hn, rel=1e-9, abs=1e-12), f"{name} losses"
    assert hn[-1] < hn[0], f"{name} did not train"
    assert_close(od.get(), on, F64, what=f"{name} last output")
    for (n, pn), (_, pd) in zip(ln.named_parameters(), ld.named_parameters()):
        assert_close(pd.value.get(), pn.value, F64, what=f"{name} trained {n}")


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_multihead_float_dtypes_on_device(cp, rng, dtype):
    """float32 (SIMT kernels) and float16 (tensor cores at head dim 64) against the numpy layer."""
    x = rng.standard_normal((2, 21, 128)).astype(dtype)
    a, b = nn.MultiHeadAttention(128, 2, seed=0, dtype=dtype), nn.MultiHeadAttention(128, 2, seed=0, dtype=dtype)
    b.to("cuda")
    ya, yb = a.forward(x), b.forward(cp.asarray(x))
    dy = rng.standard_normal(ya.shape).astype(dtype)
    ga, gb = a.backward(dy), b.backward(cp.asarray(dy))
    if dtype == np.float16:
        from helpers import assert_rel_norm

        assert_rel_norm(yb.get(), ya.astype(F64), 1e-2, what="out")
        assert_rel_norm(gb.get(), ga.astype(F64), 1e-2, what="dx")
    else:
        assert_close(yb.get(), ya, dtype, what="out")
        assert_close(gb.get(), ga, dtype, what="dx")
