"""nn.MultiHeadAttention with nn.MultiheadAttention's arguments against PyTorch: batch_first both
ways, unbatched (L, E), kdim/vdim, bias, add_bias_kv, add_zero_attn, key_padding_mask, attn_mask,
need_weights / average_attn_weights, dropout (eval equality, seeded training gradients);
state_dict both ways."""

import deepkern as dk
import numpy as np
import pytest
import torch
from helpers import assert_close, numeric_grad

nn = dk.nn
R, A = 1e-9, 1e-11

CASES = [  # B (None = unbatched), Lq, Lk, E, heads, kdim, vdim, bias, bias_kv, zero_attn, batch_first
    (2, 3, 5, 8, 2, None, None, True, False, False, True),
    (3, 4, 4, 6, 3, None, None, False, False, False, False),
    (1, 1, 1, 4, 1, None, None, True, True, True, True),
    (2, 5, 3, 6, 2, 5, 7, True, True, False, False),
    (3, 2, 6, 4, 4, 3, 3, True, False, True, True),
    (2, 4, 7, 9, 3, 2, 5, False, True, True, True),
    (None, 4, 6, 8, 2, None, None, True, True, False, True),
    (None, 3, 2, 6, 3, 4, 5, True, False, True, False),
]


def _pair(E, h, kdim, vdim, bias, bias_kv, zero_attn, batch_first, seed=0):
    torch.manual_seed(seed)
    tm = torch.nn.MultiheadAttention(
        E, h, bias=bias, add_bias_kv=bias_kv, add_zero_attn=zero_attn, kdim=kdim, vdim=vdim, batch_first=batch_first
    ).double()
    with torch.no_grad():
        for p in tm.parameters():
            p.uniform_(-0.5, 0.5)
    m = nn.MultiHeadAttention(
        E,
        h,
        bias=bias,
        add_bias_kv=bias_kv,
        add_zero_attn=zero_attn,
        kdim=kdim,
        vdim=vdim,
        batch_first=batch_first,
        dtype=np.float64,
    )
    m.load_state_dict(tm.state_dict())
    return tm, m


def _lay(B, L, W, bf, rng):
    if B is None:
        return rng.standard_normal((L, W))
    return rng.standard_normal((B, L, W) if bf else (L, B, W))


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("masks", ["none", "kpm_bool", "kpm_float", "attn_bool", "both"])
@pytest.mark.parametrize("average", [True, False])
def test_matches_torch(case, masks, average, rng):
    B, Lq, Lk, E, h, kdim, vdim, bias, bkv, za, bf = case
    tm, m = _pair(E, h, kdim, vdim, bias, bkv, za, bf)
    q = _lay(B, Lq, E, bf, rng)
    k = _lay(B, Lk, kdim or E, bf, rng)
    v = _lay(B, Lk, vdim or E, bf, rng)
    nb = 1 if B is None else B
    kpm = am = None
    if masks in ("kpm_bool", "both"):
        kpm = rng.random((nb, Lk)) < 0.3
        kpm[:, 0] = False  # every query keeps a key (torch gives NaN rows otherwise)
    elif masks == "kpm_float":
        kpm = rng.standard_normal((nb, Lk))
    if masks in ("attn_bool", "both"):
        am = rng.random((Lq, Lk)) > 0.3  # deepkern: True = may attend
        am[:, 0] = True
    if B is None and kpm is not None:
        kpm = kpm[0]
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    to, tw = tm(
        tq,
        tk,
        tv,
        key_padding_mask=None if kpm is None else torch.tensor(kpm),
        attn_mask=None if am is None else torch.tensor(~am),
        need_weights=True,
        average_attn_weights=average,
    )
    out, w = m(q, k, v, attn_mask=am, key_padding_mask=kpm, need_weights=True, average_attn_weights=average)
    assert_close(out, to, rtol=R, atol=A, what="out")
    assert_close(w, tw, rtol=R, atol=A, what="weights")
    dout = rng.standard_normal(out.shape)
    to.backward(torch.tensor(dout))
    m.zero_grad()
    dq, dk_, dv = m.backward(dout)
    for g, t in zip((dq, dk_, dv), (tq, tk, tv)):
        assert_close(g, t.grad, rtol=R, atol=A, what="input grads")
    ours = dict(m.named_parameters())
    for name, p in tm.named_parameters():
        mine = ours[name.replace("out_proj.", "out_proj_")]
        assert_close(mine.grad, p.grad, rtol=R, atol=A, what=f"d{name}")


def test_self_attention_default_returns_bare_output_and_torch_pytorch_3d_mask(rng):
    tm, m = _pair(8, 2, None, None, True, False, False, True)
    x = rng.standard_normal((3, 4, 8))
    am = rng.random((3 * 2, 4, 4)) > 0.4  # PyTorch's (B*num_heads, Lq, Lk)
    am[..., 0] = True
    out = m(x, attn_mask=am)
    to, _ = tm(*(torch.tensor(x),) * 3, attn_mask=torch.tensor(~am))
    assert_close(out, to, rtol=R, atol=A, what="3-D mask")
    tx = torch.tensor(x, requires_grad=True)
    tm(tx, tx, tx, need_weights=False)[0].backward(torch.ones(3, 4, 8, dtype=torch.float64))
    m.forward(x)
    assert_close(m.backward(np.ones((3, 4, 8))), tx.grad, rtol=R, atol=A, what="self-attention dx")


def test_dropout_eval_matches_torch_and_training_gradients_by_finite_differences(rng):
    tm = torch.nn.MultiheadAttention(6, 2, dropout=0.3, batch_first=True).double()
    m = nn.MultiHeadAttention(6, 2, dropout=0.3, dtype=np.float64, seed=1)
    m.load_state_dict(tm.state_dict())
    x = rng.standard_normal((2, 5, 6))
    tm.eval()
    m.eval()
    assert_close(m(x), tm(*(torch.tensor(x),) * 3)[0], rtol=R, atol=A, what="eval")
    m.train()
    assert not np.allclose(m(x), m(x))

    def f(a):
        m._rng = np.random.default_rng(3)  # the same attention-dropout seed every call
        return m.forward(a, training=True)

    y = f(x)
    dy = rng.standard_normal(y.shape)
    m.zero_grad()
    dx = m.backward(dy)
    assert_close(dx, numeric_grad(f, x, dy), rtol=1e-6, atol=1e-8, what="dx with attention dropout")
    m._rng = np.random.default_rng(3)
    out, w = m.forward(x, training=True, need_weights=True, average_attn_weights=False)
    assert (w == 0).any() and abs(w.sum(axis=-1).mean() - 1) < 0.5  # after dropout, as PyTorch returns them


@pytest.mark.parametrize("kw", [dict(), dict(add_bias_kv=True), dict(kdim=3, vdim=5), dict(bias=False)])
def test_state_dict_both_ways_and_parameter_count(kw, rng):
    m = nn.MultiHeadAttention(8, 2, dtype=np.float64, seed=0, **kw)
    tm = torch.nn.MultiheadAttention(8, 2, batch_first=True, **kw).double()
    sd = m.state_dict()
    assert set(sd) == set(tm.state_dict())
    tm.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    assert m.num_params() == sum(p.numel() for p in tm.parameters())
    q = rng.standard_normal((2, 3, 8))
    k = rng.standard_normal((2, 4, kw.get("kdim", 8)))
    v = rng.standard_normal((2, 4, kw.get("vdim", 8)))
    assert_close(m(q, k, v), tm(*(torch.tensor(a) for a in (q, k, v)))[0], rtol=R, atol=A, what="exported")


BAD = [
    (lambda: nn.MultiHeadAttention(8, 2, dropout=1.0), ValueError, "dropout"),
    (lambda: nn.MultiHeadAttention(8, 2, kdim=0), ValueError, "kdim"),
    (lambda: nn.MultiHeadAttention(8, 2, kdim=3).forward(np.zeros((2, 3, 8))), ValueError, "'key' is required"),
    (
        lambda: nn.MultiHeadAttention(8, 2, kdim=3).forward(
            np.zeros((2, 3, 8)), np.zeros((2, 4, 8)), np.zeros((2, 4, 8))
        ),
        ValueError,
        "'key' has shape",
    ),
    (
        lambda: nn.MultiHeadAttention(8, 2).forward(np.zeros((2, 3, 8)), key_padding_mask=np.zeros((2, 4), bool)),
        ValueError,
        "key_padding_mask",
    ),
    (lambda: nn.MultiHeadAttention(8, 2).forward(np.zeros((3, 8)), np.zeros((2, 3, 8))), ValueError, "'key'"),
    (
        lambda: nn.MultiHeadAttention(8, 2).forward(np.zeros((2, 3, 8)), attn_mask=np.ones((5, 3, 3), bool)),
        ValueError,
        "attn_mask",
    ),
]


@pytest.mark.parametrize("fn,exc,match", BAD)
def test_bad_input(fn, exc, match):
    with pytest.raises(exc, match=match):
        fn()
