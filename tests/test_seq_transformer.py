"""MultiHeadAttention vs torch.nn.MultiheadAttention, LayerNorm vs torch, PositionalEncoding vs the
formula, TransformerEncoderLayer vs torch.nn.TransformerEncoderLayer (copied weights), and
finite-difference gradients of each (float64)."""

import deepkern as dk
import numpy as np
import pytest
from helpers import assert_close
from reference import sinusoidal
from seq_checks import gradcheck

torch = pytest.importorskip("torch")

F64 = np.float64


def _torch_state(m):
    return {k: v.detach().numpy() for k, v in m.state_dict().items()}


def _t(a):
    return torch.tensor(a, requires_grad=True)


# (B, Lq, Lk, dim, heads, mode): mode self / cross (key = value given) / kv (key and value differ)
MHA_CASES = [
    (1, 1, 1, 2, 1, "self"),
    (2, 5, 5, 8, 2, "self"),
    (3, 4, 6, 6, 3, "cross"),
    (2, 3, 7, 4, 4, "kv"),
    (1, 7, 7, 12, 3, "self"),
]


@pytest.mark.parametrize("B,Lq,Lk,D,h,mode", MHA_CASES)
@pytest.mark.parametrize("causal", [False, True])
def test_mha_matches_torch(rng, B, Lq, Lk, D, h, mode, causal):
    torch.manual_seed(Lq + D)
    tm = torch.nn.MultiheadAttention(D, h, batch_first=True).double()
    with torch.no_grad():
        tm.in_proj_bias.normal_()
        tm.out_proj.bias.normal_()
    m = dk.nn.MultiHeadAttention(D, h, causal=causal, dtype=F64)
    m.load_torch_state("attn", {"attn." + k: v for k, v in _torch_state(tm).items()})
    q = rng.standard_normal((B, Lq, D))
    k = q if mode == "self" else rng.standard_normal((B, Lk, D))
    v = rng.standard_normal((B, Lk, D)) if mode == "kv" else k
    if mode == "self":
        out = m.forward(q)
    elif mode == "cross":
        out = m.forward(q, k)
    else:
        out = m.forward(q, k, v)
    qt = _t(q)
    kt = qt if mode == "self" else _t(k)
    vt = _t(v) if mode == "kv" else kt
    mask = torch.ones(Lq, Lk, dtype=torch.bool).triu(1) if causal else None  # torch: True = masked out
    ot, _ = tm(qt, kt, vt, attn_mask=mask, need_weights=False)
    assert_close(out, ot, F64, what="out")
    dout = rng.standard_normal(out.shape)
    (ot * torch.tensor(dout)).sum().backward()
    g = m.backward(dout)
    if mode == "self":
        assert_close(g, qt.grad, F64, what="dx")
    elif mode == "cross":
        assert_close(g[0], qt.grad, F64, what="dq")
        assert_close(g[1], kt.grad, F64, what="dk")
        assert g[2] is None
    else:
        for a, b, n in zip(g, (qt, kt, vt), "qkv"):
            assert_close(a, b.grad, F64, what="d" + n)
    assert_close(m.in_proj_weight.grad, tm.in_proj_weight.grad, F64)
    assert_close(m.in_proj_bias.grad, tm.in_proj_bias.grad, F64)
    assert_close(m.out_proj_weight.grad, tm.out_proj.weight.grad, F64)
    assert_close(m.out_proj_bias.grad, tm.out_proj.bias.grad, F64)


def test_mha_mask_matches_torch(rng):
    """A key-padding style mask (B, Lq, Lk), True = may attend (the opposite of torch's bool mask)."""
    B, L, D, h = 2, 5, 6, 2
    tm = torch.nn.MultiheadAttention(D, h, batch_first=True).double()
    m = dk.nn.MultiHeadAttention(D, h, dtype=F64)
    m.load_torch_state("", _torch_state(tm))
    x = rng.standard_normal((B, L, D))
    keep = np.ones((B, L, L), bool)
    keep[0, :, 3:] = False
    keep[1, :, 1] = False
    out = m.forward(x, attn_mask=keep)
    tmask = torch.tensor(~keep).repeat_interleave(h, dim=0)  # torch wants (B*h, L, L)
    ot, _ = tm(*(torch.tensor(x),) * 3, attn_mask=tmask, need_weights=False)
    assert_close(out, ot, F64)


@pytest.mark.parametrize("causal,mode", [(False, "self"), (True, "self"), (False, "kv")])
def test_mha_gradcheck(rng, causal, mode):
    m = dk.nn.MultiHeadAttention(4, 2, causal=causal, seed=3, dtype=F64)
    m.in_proj_bias.value[:] = rng.standard_normal(12) * 0.1
    q = rng.standard_normal((2, 3, 4))
    if mode == "self":
        gradcheck(lambda q: m.forward(q), m.backward, [q], m.parameters(), rng, what="MHA self")
    else:
        k, v = rng.standard_normal((2, 4, 4)), rng.standard_normal((2, 4, 4))
        gradcheck(lambda q, k, v: m.forward(q, k, v), m.backward, [q, k, v], m.parameters(), rng, what="MHA kv")


def test_mha_num_params():
    assert dk.nn.MultiHeadAttention(8, 2).num_params() == 4 * 64 + 4 * 8


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (2, 5, 6), (2, 3, 4, 9)])
def test_layernorm_matches_torch(rng, shape):
    D = shape[-1]
    tm = torch.nn.LayerNorm(D).double()
    with torch.no_grad():
        tm.weight.normal_()
        tm.bias.normal_()
    m = dk.nn.LayerNorm(D, dtype=F64)
    m.load_torch_state("ln", {"ln." + k: v for k, v in _torch_state(tm).items()})
    x = rng.standard_normal(shape) * 3 + 1
    xt = _t(x)
    y, yt = m.forward(x), tm(xt)
    assert_close(y, yt, F64)
    dy = rng.standard_normal(shape)
    (yt * torch.tensor(dy)).sum().backward()
    assert_close(m.backward(dy), xt.grad, F64, what="dx")
    assert_close(m.weight.grad, tm.weight.grad, F64)
    assert_close(m.bias.grad, tm.bias.grad, F64)


def test_layernorm_gradcheck(rng):
    m = dk.nn.LayerNorm(5, dtype=F64)
    m.weight.value[:] = rng.standard_normal(5)
    gradcheck(m.forward, m.backward, [rng.standard_normal((3, 2, 5))], m.parameters(), rng, what="LayerNorm")


@pytest.mark.parametrize("dim,max_len,T", [(1, 1, 1), (4, 10, 7), (7, 5, 5), (16, 50, 3)])
def test_positional_sinusoidal(rng, dim, max_len, T):
    pe = dk.nn.PositionalEncoding(dim, max_len, dtype=F64)
    assert pe.num_params() == 0
    x = rng.standard_normal((2, T, dim))
    assert_close(pe.forward(x), x + sinusoidal(max_len, dim)[:T], F64)
    dy = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(pe.backward(dy), dy)


def test_positional_learned_gradcheck(rng):
    pe = dk.nn.PositionalEncoding(3, 6, kind="learned", dtype=F64, seed=0)
    assert pe.num_params() == 18
    x = rng.standard_normal((2, 4, 3))
    gradcheck(pe.forward, pe.backward, [x], pe.parameters(), rng, what="learned PE")
    assert np.all(pe.weight.grad[4:] == 0)  # rows past T were not used


def _torch_encoder(D, h, ff, seed):
    torch.manual_seed(seed)
    tm = torch.nn.TransformerEncoderLayer(D, h, ff, dropout=0.0, batch_first=True).double()
    with torch.no_grad():
        for name, p in tm.named_parameters():
            if "norm" in name:
                p.normal_(mean=1.0 if name.endswith("weight") else 0.0, std=0.3)
    return tm


@pytest.mark.parametrize("B,T,D,h,ff", [(1, 1, 2, 1, 3), (2, 5, 8, 2, 16), (3, 4, 6, 3, 5)])
@pytest.mark.parametrize("causal", [False, True])
def test_encoder_layer_matches_torch(rng, B, T, D, h, ff, causal):
    tm = _torch_encoder(D, h, ff, seed=B + T)
    m = dk.nn.TransformerEncoderLayer(D, h, ff, causal=causal, dtype=F64)
    m.load_torch_state("enc", {"enc." + k: v for k, v in _torch_state(tm).items()})
    assert m.num_params() == sum(p.numel() for p in tm.parameters())
    x = rng.standard_normal((B, T, D))
    xt = _t(x)
    mask = torch.ones(T, T, dtype=torch.bool).triu(1) if causal else None
    yt = tm(xt, src_mask=mask)
    y = m.forward(x)
    assert_close(y, yt, F64)
    dy = rng.standard_normal(y.shape)
    (yt * torch.tensor(dy)).sum().backward()
    assert_close(m.backward(dy), xt.grad, F64, what="dx")
    tgrads = dict(tm.named_parameters())
    ours = {
        "self_attn.in_proj_weight": m.self_attn.in_proj_weight,
        "self_attn.out_proj.weight": m.self_attn.out_proj_weight,
        "linear1.weight": m.linear1.weight,
        "linear2.bias": m.linear2.bias,
        "norm1.weight": m.norm1.weight,
        "norm2.bias": m.norm2.bias,
    }
    for name, p in ours.items():
        assert_close(p.grad, tgrads[name].grad, F64, what=name)


def test_encoder_layer_gradcheck(rng):
    m = dk.nn.TransformerEncoderLayer(4, 2, 6, seed=5, dtype=F64)
    gradcheck(m.forward, m.backward, [rng.standard_normal((2, 3, 4))], m.parameters(), rng, what="encoder layer")


def test_encoder_layer_dropout_is_identity_at_inference(rng):
    m = dk.nn.TransformerEncoderLayer(4, 2, 6, dropout=0.5, seed=1, dtype=F64)
    x = rng.standard_normal((2, 3, 4))
    a, b = m.forward(x, training=False), m.forward(x, training=False)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(m.forward(x, training=True), a)  # dropout active in training


def test_transformer_in_sequential(rng):
    """Embedding -> positional encoding -> encoder layer -> Dense: built with Sequential, summary counts."""
    model = dk.nn.Sequential(
        [
            dk.nn.Embedding(10, 8),
            dk.nn.PositionalEncoding(8, 20),
            dk.nn.TransformerEncoderLayer(8, 2, 16),
            dk.nn.Dense(8, 10),
        ]
    )
    y = model.forward(rng.integers(0, 10, (3, 6)))
    assert y.shape == (3, 6, 10)
    assert model.backward(np.ones_like(y)) is None  # Embedding's input has no gradient


BAD = [
    (lambda: dk.nn.MultiHeadAttention(6, 4), ValueError, "divisible"),
    (lambda: dk.nn.MultiHeadAttention(4, 2).forward(np.zeros((2, 3, 5))), ValueError, "query"),
    (
        lambda: dk.nn.MultiHeadAttention(4, 2).forward(np.zeros((2, 3, 4)), np.zeros((2, 5, 4)), np.zeros((2, 4, 4))),
        ValueError,
        "value",
    ),
    (
        lambda: dk.nn.MultiHeadAttention(4, 2).forward(np.zeros((2, 3, 4)), attn_mask=np.ones((3, 4), bool)),
        ValueError,
        "attn_mask",
    ),
    (lambda: dk.nn.LayerNorm(4).forward(np.zeros((2, 5))), ValueError, "'x'"),
    (lambda: dk.nn.LayerNorm(4, eps=0), ValueError, "eps"),
    (lambda: dk.nn.PositionalEncoding(4, 3).forward(np.zeros((1, 5, 4))), ValueError, "max_len"),
    (lambda: dk.nn.PositionalEncoding(4, 3, kind="rotary"), ValueError, "kind"),
    (lambda: dk.nn.TransformerEncoderLayer(4, 2, 8, dropout=1.0), ValueError, "dropout"),
]


@pytest.mark.parametrize("fn,exc,match", BAD)
def test_bad_inputs(fn, exc, match):
    with pytest.raises(exc, match=match):
        fn()


def test_save_load_roundtrip(rng, tmp_path):
    """Every sequence layer survives Sequential.save / load (config + weights)."""
    model = dk.nn.Sequential(
        [
            dk.nn.Embedding(20, 8),
            dk.nn.LSTM(8, 8, num_layers=2, return_sequences=True),
            dk.nn.PositionalEncoding(8, 12, kind="learned"),
            dk.nn.LayerNorm(8),
            dk.nn.TransformerEncoderLayer(8, 2, 12),
            dk.nn.SimpleRNN(8, 4, recurrent_init="identity"),
            dk.nn.Dense(4, 3),
        ]
    )
    x = rng.integers(0, 20, (3, 7))
    y = model.predict(x)
    model.save(tmp_path / "m.npz")
    loaded = dk.nn.Sequential.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.predict(x), y)
