"""BahdanauAttention and LuongAttention against the formulas written out (tests/reference/seq.py),
finite-difference gradients, masks, the step-wise attend API, bad inputs."""

import deepkern as dk
import numpy as np
import pytest
from helpers import assert_close
from reference import additive_attention, luong_attention
from seq_checks import gradcheck

F64 = np.float64

# (B, Tq or None for a single (B, Dq) query, S, Dq, Dk, Dv or None for values = keys)
CASES = [
    (1, None, 1, 1, 1, None),
    (3, None, 5, 4, 6, None),
    (2, 3, 4, 5, 3, 2),
    (4, 1, 7, 3, 3, None),
    (2, 5, 2, 6, 4, 5),
]


def _inputs(rng, B, Tq, S, Dq, Dk, Dv):
    q = rng.standard_normal((B, Dq) if Tq is None else (B, Tq, Dq))
    k = rng.standard_normal((B, S, Dk))
    v = None if Dv is None else rng.standard_normal((B, S, Dv))
    return q, k, v


def _q3(q):
    return q[:, None] if q.ndim == 2 else q


def _unq(a, q):
    return a[:, 0] if q.ndim == 2 else a


@pytest.mark.parametrize("B,Tq,S,Dq,Dk,Dv", CASES)
def test_bahdanau_matches_formula(rng, B, Tq, S, Dq, Dk, Dv):
    att = dk.nn.BahdanauAttention(Dq, Dk, units=5, dtype=F64, seed=B)
    att.bias.value[:] = rng.standard_normal(5)
    q, k, v = _inputs(rng, B, Tq, S, Dq, Dk, Dv)
    ctx = att.forward(q, k, v)
    ref_ctx, ref_a = additive_attention(
        _q3(q), k, k if v is None else v, att.w_query.value, att.w_key.value, att.bias.value, att.v.value
    )
    assert_close(ctx, _unq(ref_ctx, q), F64, what="context")
    assert_close(att.alignment, _unq(ref_a, q), F64, what="alignment")
    assert_close(att.alignment.sum(-1), np.ones(att.alignment.shape[:-1]), F64)


@pytest.mark.parametrize("score", ["dot", "general", "concat"])
@pytest.mark.parametrize("B,Tq,S,Dq,Dk,Dv", CASES)
def test_luong_matches_formula(rng, score, B, Tq, S, Dq, Dk, Dv):
    if score == "dot":
        Dk = Dq
    att = dk.nn.LuongAttention(Dq, Dk, score=score, units=4, dtype=F64, seed=S)
    q, k, v = _inputs(rng, B, Tq, S, Dq, Dk, Dv)
    ctx = att.forward(q, k, v)
    W = None if score == "dot" else att.weight.value
    va = att.v.value if score == "concat" else None
    ref_ctx, ref_a = luong_attention(_q3(q), k, k if v is None else v, score, W, va)
    assert_close(ctx, _unq(ref_ctx, q), F64, what="context")
    assert_close(att.alignment, _unq(ref_a, q), F64, what="alignment")


def _make(kind, Dq, Dk):
    if kind == "bahdanau":
        a = dk.nn.BahdanauAttention(Dq, Dk, units=3, dtype=F64, seed=0)
        a.bias.value[:] = [0.1, -0.2, 0.3]
        return a
    score = kind.split("-")[1]
    return dk.nn.LuongAttention(Dq, Dq if score == "dot" else Dk, score=score, units=3, dtype=F64, seed=0)


KINDS = ["bahdanau", "luong-dot", "luong-general", "luong-concat"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("Tq,Dv,masked", [(None, None, False), (3, 2, False), (2, None, True), (None, 3, True)])
def test_attention_gradcheck(rng, kind, Tq, Dv, masked):
    Dq, Dk = 4, (4 if kind == "luong-dot" else 3)
    att = _make(kind, Dq, Dk)
    q, k, v = _inputs(rng, 2, Tq, 4, Dq, Dk, Dv)
    mask = np.array([[True, True, False, True], [True, False, False, False]]) if masked else None
    inputs = [q, k] if v is None else [q, k, v]
    gradcheck(
        lambda *a: att.forward(a[0], a[1], a[2] if len(a) > 2 else None, mask=mask),
        att.backward,
        inputs,
        att.parameters(),
        rng,
        what=kind,
    )


@pytest.mark.parametrize("kind", KINDS)
def test_mask_excludes_positions(rng, kind):
    att = _make(kind, 4, 4)
    q, k, v = _inputs(rng, 2, 3, 5, 4, 4, 3)
    mask = np.array([[True, False, True, True, False], [False, False, False, False, True]])
    ctx = att.forward(q, k, v, mask=mask)
    a = att.alignment
    assert np.all(a[:, :, :][~np.broadcast_to(mask[:, None], a.shape)] == 0)
    assert_close(a.sum(-1), np.ones((2, 3)), F64)
    # the masked-out positions' keys and values cannot change the result
    k2, v2 = k.copy(), v.copy()
    k2[~mask] += 10.0
    v2[~mask] -= 7.0
    assert_close(att.forward(q, k2, v2, mask=mask), ctx, F64)
    # a fully masked row gives a zero context, not NaN
    out = att.forward(q, k, v, mask=np.zeros((2, 5), bool))
    np.testing.assert_array_equal(out, np.zeros_like(out))


@pytest.mark.parametrize("kind", KINDS)
def test_attend_api_matches_forward(rng, kind):
    """Step-wise use in a decoder loop: one attend per step == one forward over all steps."""
    att = _make(kind, 4, 4)
    q, k, v = _inputs(rng, 2, 3, 5, 4, 4, 2)
    dctx = rng.standard_normal((2, 3, 2))
    ctx = att.forward(q, k, v)
    dq, dk_, dv = att.backward(dctx)
    grads = [p.grad.copy() for p in att.parameters()]
    att.zero_grad()
    dk_sum, dv_sum = np.zeros_like(k), np.zeros_like(v)
    for t in range(3):
        c, cache = att.attend(q[:, t], k, v)
        assert_close(c, ctx[:, t], F64)
        g = att.attend_backward(cache, dctx[:, t])
        assert_close(g[0], dq[:, t], F64)
        dk_sum += g[1]
        dv_sum += g[2]
    assert_close(dk_sum, dk_, F64)
    assert_close(dv_sum, dv, F64)
    for p, gr in zip(att.parameters(), grads):
        assert_close(p.grad, gr, F64)


def test_parameter_counts():
    assert dk.nn.BahdanauAttention(4, 6, units=5).num_params() == 5 * (4 + 6 + 2)
    assert dk.nn.LuongAttention(4).num_params() == 0
    assert dk.nn.LuongAttention(4, 6, score="general").num_params() == 24
    assert dk.nn.LuongAttention(4, 6, score="concat", units=5).num_params() == 5 * 10 + 5


def test_float32(rng):
    att = dk.nn.BahdanauAttention(4, 3)
    ctx = att.forward(rng.standard_normal((2, 4)), rng.standard_normal((2, 5, 3)))
    assert ctx.dtype == np.float32 and att.alignment.dtype == np.float32
    dq, dk_, dv = att.backward(np.ones((2, 3), np.float32))
    assert dq.dtype == np.float32 and dq.shape == (2, 4) and dk_.shape == (2, 5, 3) and dv is None


BAD = [
    (lambda: dk.nn.LuongAttention(4, 5, score="dot"), ValueError, "key_dim"),
    (lambda: dk.nn.LuongAttention(4, score="cosine"), ValueError, "score"),
    (lambda: dk.nn.BahdanauAttention(0), ValueError, "query_dim"),
    (lambda: dk.nn.BahdanauAttention(4).forward(np.zeros((2, 3)), np.zeros((2, 5, 4))), ValueError, "query"),
    (lambda: dk.nn.BahdanauAttention(4).forward(np.zeros((2, 4)), np.zeros((2, 5, 3))), ValueError, "keys"),
    (lambda: dk.nn.BahdanauAttention(4).forward(np.zeros((2, 4)), np.zeros((3, 5, 4))), ValueError, "keys"),
    (
        lambda: dk.nn.BahdanauAttention(4).forward(np.zeros((2, 4)), np.zeros((2, 5, 4)), np.zeros((2, 4, 4))),
        ValueError,
        "values",
    ),
    (
        lambda: dk.nn.LuongAttention(4).forward(np.zeros((2, 4)), np.zeros((2, 5, 4)), mask=np.ones((2, 5))),
        ValueError,
        "mask",
    ),
]


@pytest.mark.parametrize("fn,exc,match", BAD)
def test_bad_inputs(fn, exc, match):
    with pytest.raises(exc, match=match):
        fn()


def _decoder(kind, cell_kind, E=2, H=3, Dk=3):
    if kind == "bahdanau":
        att = dk.nn.BahdanauAttention(H, Dk, units=3, dtype=F64, seed=1)
        I = E + Dk
    else:
        att = dk.nn.LuongAttention(H, Dk, score="general", dtype=F64, seed=1)
        I = E
    cell = (
        dk.nn.SimpleRNN(I, H, dtype=F64, seed=2)
        if cell_kind == "rnn"
        else dk.nn.LSTM(I, H, num_layers=2 if cell_kind == "lstm2" else 1, dtype=F64, seed=2)
    )
    return dk.nn.AttentionDecoder(cell, att)


@pytest.mark.parametrize("kind", ["bahdanau", "luong"])
@pytest.mark.parametrize("cell_kind", ["rnn", "lstm", "lstm2"])
def test_attention_decoder_gradcheck(rng, kind, cell_kind):
    """Inputs, keys, initial state and every parameter of an attention decoder, by finite differences."""
    from seq_checks import gradcheck

    dec = _decoder(kind, cell_kind)
    x, keys = rng.standard_normal((2, 3, 2)), rng.standard_normal((2, 4, 3))
    s0 = tuple(rng.standard_normal(s.shape) for s in dec.cell.zero_state(2))
    mask = np.array([[True, True, True, False], [True, False, True, True]])
    n = len(s0)
    gradcheck(
        lambda x, keys, *s: dec.forward(x, keys, initial_state=s, mask=mask),
        lambda d: dec.backward(d)[:2],
        [x, keys, *s0],
        dec.parameters(),
        rng,
        what=f"{kind} {cell_kind}",
        input_grads={2 + i: (lambda i=i: dec.state_grad[i]) for i in range(n)},
    )
    assert dec.alignment.shape == (2, 3, 4)


@pytest.mark.parametrize("kind", ["bahdanau", "luong"])
def test_attention_decoder_timing(rng, kind):
    """Bahdanau scores from the state *before* the step (step 0 attends from the initial state);
    Luong from the state after it; decode_step reproduces the teacher-forced forward."""
    dec = _decoder(kind, "lstm")
    x, keys = rng.standard_normal((2, 4, 2)), rng.standard_normal((2, 5, 3))
    s0 = tuple(rng.standard_normal(s.shape) for s in dec.cell.zero_state(2))
    out = dec.forward(x, keys, initial_state=s0)
    q0 = s0[0] if kind == "bahdanau" else out[:, 0, :3]
    dec.attention.forward(q0, keys)
    assert_close(dec.alignment[:, 0], dec.attention.alignment, F64)
    state = s0
    for t in range(4):
        o, state = dec.decode_step(x[:, t], state, keys)
        assert_close(o, out[:, t], F64, what=f"decode_step {t}")


def test_luong_dot_without_dims(rng):
    """LuongAttention(score="dot") needs no sizes; it computes in the inputs' dtype."""
    att = dk.nn.LuongAttention(score="dot")
    q, k = rng.standard_normal((2, 3, 5)), rng.standard_normal((2, 4, 5))
    ctx = att.forward(q, k)
    ref, a = luong_attention(q, k, k, "dot")
    assert ctx.dtype == np.float64
    assert_close(ctx, ref, F64)
    assert att.forward(q.astype(np.float32), k.astype(np.float32)).dtype == np.float32
    with pytest.raises(ValueError, match="keys"):
        att.forward(q, rng.standard_normal((2, 4, 6)))
    with pytest.raises(ValueError, match="query_dim"):
        dk.nn.LuongAttention(score="general")
