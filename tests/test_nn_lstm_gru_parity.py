"""nn.LSTM / nn.GRU with PyTorch's arguments (num_layers, bidirectional, proj_size, bias, dropout,
batch_first, unbatched) against torch.nn.LSTM / GRU: outputs, final states, every gradient; the
functional dk.gru / dk.lstm(w_hr=) against the float64 references and finite differences."""

import deepkern as dk
import numpy as np
import pytest
import torch
from helpers import assert_close, numeric_grad
from reference.gru import gru_ref
from reference.lstm import lstm_proj_ref

nn = dk.nn
R, A = 1e-9, 1e-11


def _pairs(kind, I, H, L, bidir, bias, proj, batch_first, seed):
    torch.manual_seed(seed)
    kw = dict(num_layers=L, bidirectional=bidir, bias=bias, batch_first=batch_first)
    if kind == "lstm":
        tm = torch.nn.LSTM(I, H, proj_size=proj, **kw).double()
        m = nn.LSTM(I, H, return_sequences=True, return_state=True, dtype=np.float64, proj_size=proj, **kw)
    else:
        tm = torch.nn.GRU(I, H, **kw).double()
        m = nn.GRU(I, H, return_sequences=True, return_state=True, dtype=np.float64, **kw)
    with torch.no_grad():
        for p in tm.parameters():
            p.uniform_(-0.6, 0.6)
    m.load_state_dict(tm.state_dict())
    return tm, m


CASES = [  # kind, B, T, I, H, L, bidirectional, bias, proj, batch_first
    ("lstm", 3, 5, 4, 6, 1, False, True, 0, True),
    ("lstm", 2, 7, 3, 5, 2, True, True, 0, True),
    ("lstm", 1, 1, 1, 1, 1, True, False, 0, False),
    ("lstm", 4, 3, 5, 7, 3, False, False, 0, False),
    ("lstm", 3, 4, 2, 6, 2, True, True, 3, True),
    ("lstm", 2, 6, 5, 4, 1, False, True, 1, False),
    ("lstm", None, 5, 3, 4, 2, True, True, 2, True),  # unbatched
    ("lstm", None, 1, 2, 3, 1, False, True, 0, False),
    ("gru", 3, 5, 4, 6, 1, False, True, 0, True),
    ("gru", 2, 7, 3, 5, 2, True, True, 0, True),
    ("gru", 1, 1, 1, 1, 1, True, False, 0, False),
    ("gru", 5, 3, 7, 2, 3, True, True, 0, False),
    ("gru", None, 4, 3, 5, 2, True, False, 0, True),
]


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("with_state", [False, True])
def test_layer_matches_torch_forward_and_backward(case, with_state, rng):
    kind, B, T, I, H, L, bidir, bias, proj, bf = case
    tm, m = _pairs(kind, I, H, L, bidir, bias, proj, bf, 0)
    D, Ho = (2 if bidir else 1), (proj or H)
    x = rng.standard_normal((T, I) if B is None else ((B, T, I) if bf else (T, B, I)))
    nb = () if B is None else (B,)
    states = None
    if with_state:
        states = [rng.standard_normal((L * D,) + nb + (Ho,))]
        if kind == "lstm":
            states.append(rng.standard_normal((L * D,) + nb + (H,)))
    xt = torch.tensor(x, requires_grad=True)
    st_t = None if states is None else [torch.tensor(s, requires_grad=True) for s in states]
    if kind == "lstm":
        yt, (ht, ct) = tm(xt, None if st_t is None else tuple(st_t))
        fin_t = [ht, ct]
    else:
        yt, ht = tm(xt, None if st_t is None else st_t[0])
        fin_t = [ht]
    ours_state = None
    if states is not None:  # deepkern: (B, H) for one layer and direction, else PyTorch's stacked shape
        ours_state = tuple(s[0] if L * D == 1 else s for s in states)
        ours_state = ours_state if kind == "lstm" else ours_state[0]
    out = m(x, ours_state)
    y, fins = out[0], out[1:]
    assert_close(y, yt, rtol=R, atol=A, what="y")
    for f, ft in zip(fins, fin_t):
        ft = ft.detach().numpy()
        assert_close(f, ft[0] if L * D == 1 else ft, rtol=R, atol=A, what="final state")
    dy = rng.standard_normal(y.shape)
    dfs = [rng.standard_normal(f.shape) for f in fins]
    loss = (yt * torch.tensor(dy)).sum()
    for ft, d in zip(fin_t, dfs):
        loss = loss + (ft * torch.tensor(d if L * D > 1 else d[None])).sum()
    loss.backward()
    m.zero_grad()
    dx = m.backward((dy, *dfs))
    assert_close(dx, xt.grad, rtol=R, atol=A, what="dx")
    if states is not None:
        for g, s in zip(m.state_grad, st_t):
            assert_close(g, s.grad.numpy()[0] if L * D == 1 else s.grad, rtol=R, atol=A, what="dstate0")
    ours = m.torch_state_dict()
    grads = {n: p.grad for n, p in m.named_parameters()}
    for name, p in tm.named_parameters():
        if kind == "lstm" and name.startswith("bias_"):
            g = grads["bias_" + name.split("_", 2)[2]]
        else:
            g = grads[name]
        assert name in ours
        assert_close(g, p.grad, rtol=R, atol=A, what=f"d{name}")


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_state_dict_both_ways(kind, rng):
    tm, m = _pairs(kind, 3, 5, 2, True, True, 2 if kind == "lstm" else 0, True, 1)
    sd = m.state_dict()
    assert set(sd) == set(tm.state_dict())
    with torch.no_grad():
        for p in tm.parameters():
            p.zero_()
    tm.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    x = rng.standard_normal((2, 4, 3))
    assert_close(m(x)[0], tm(torch.tensor(x))[0], rtol=R, atol=A, what="after export")
    with pytest.raises(ValueError, match="missing"):
        m.load_state_dict({k: v for k, v in sd.items() if "reverse" not in k})


def test_parameter_counts_follow_each_convention():
    assert nn.LSTM(3, 4).num_params() == 4 * (4 * (3 + 4) + 4)  # one bias per gate (the course's count)
    assert nn.LSTM(3, 4, bias=False).num_params() == 4 * 4 * (3 + 4)
    g = nn.GRU(3, 4, num_layers=2, bidirectional=True)
    tg = torch.nn.GRU(3, 4, num_layers=2, bidirectional=True)
    assert g.num_params() == sum(p.numel() for p in tg.parameters())
    lp = nn.LSTM(3, 5, proj_size=2, bias=False)
    assert lp.num_params() == sum(p.numel() for p in torch.nn.LSTM(3, 5, proj_size=2, bias=False).parameters())


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_dropout_between_layers(kind, rng):
    cls = nn.LSTM if kind == "lstm" else nn.GRU
    m = cls(3, 4, num_layers=3, return_sequences=True, dropout=0.4, seed=3, dtype=np.float64)
    x = rng.standard_normal((2, 6, 3))
    m.eval()
    np.testing.assert_array_equal(m(x), m(x))  # eval: no dropout
    tm = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(3, 4, num_layers=3, batch_first=True, dropout=0.4).double()
    tm.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()})
    tm.eval()
    assert_close(m(x), tm(torch.tensor(x))[0], rtol=R, atol=A, what="eval vs torch")
    m.train()
    a = m(x)
    assert not np.allclose(a, m(x))  # training: a fresh mask each call

    def f(xx):
        m._rng = np.random.default_rng(11)  # the same mask every call, for finite differences
        return m.forward(xx, training=True)

    y = f(x)
    dy = rng.standard_normal(y.shape)
    m.zero_grad()
    dx = m.backward(dy)
    assert_close(dx, numeric_grad(f, x, dy), rtol=1e-6, atol=1e-8, what="dx with dropout")
    w = m.weight_ih_l0
    orig = w.value

    def fw(v):
        w.value = v
        return f(x)

    num = numeric_grad(fw, orig, dy)
    w.value = orig
    assert_close(w.grad, num, rtol=1e-6, atol=1e-8, what="dweight_ih_l0 with dropout")


@pytest.mark.parametrize("T,B,I,H", [(1, 1, 1, 1), (4, 3, 5, 2), (7, 2, 3, 6)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_functional_gru_matches_reference_and_finite_differences(T, B, I, H, dtype, rng):
    w_ih, w_hh = rng.uniform(-0.7, 0.7, (3 * H, I)), rng.uniform(-0.7, 0.7, (3 * H, H))
    b_ih, b_hh = rng.uniform(-0.5, 0.5, 3 * H), rng.uniform(-0.5, 0.5, 3 * H)
    x, h0 = rng.standard_normal((T, B, I)), rng.standard_normal((B, H))
    cast = [a.astype(dtype) for a in (x, h0, w_ih, w_hh, b_ih, b_hh)]
    ref_y, ref_h = gru_ref(*cast)
    (y, hT), ctx = dk.gru(*cast, return_ctx=True)
    assert y.dtype == dtype
    assert_close(y, ref_y, dtype=dtype, what="gru y")
    assert_close(hT, ref_h, dtype=dtype, what="gru hT")
    if dtype == np.float64:
        dy, dh = rng.standard_normal((T, B, H)), rng.standard_normal((B, H))
        grads = dk.gru_backward(ctx, dy, dh)
        args = [x, h0, w_ih, w_hh, b_ih, b_hh]
        for i, g in enumerate(grads):

            def f(a, i=i):
                aa = list(args)
                aa[i] = a
                yy, hh = dk.gru(*aa)
                return np.concatenate([yy.ravel(), hh.ravel()])

            num = numeric_grad(f, args[i], np.concatenate([dy.ravel(), dh.ravel()]))
            assert_close(g, num, rtol=1e-6, atol=1e-8, what=f"gru grad {i}")
        h1, cctx = dk.gru_cell(x[0], h0, w_ih, w_hh, b_ih, b_hh, return_ctx=True)
        assert_close(h1, gru_ref(x[:1], h0, w_ih, w_hh, b_ih, b_hh)[1], what="gru_cell")
        tc = torch.nn.GRUCell(I, H).double()
        with torch.no_grad():
            for p, v in zip((tc.weight_ih, tc.weight_hh, tc.bias_ih, tc.bias_hh), (w_ih, w_hh, b_ih, b_hh)):
                p.copy_(torch.tensor(v))
        xt, ht = torch.tensor(x[0], requires_grad=True), torch.tensor(h0, requires_grad=True)
        (tc(xt, ht) * torch.tensor(dh)).sum().backward()
        dxc, dhc, *wg = dk.gru_cell_backward(cctx, dh)
        assert_close(dxc, xt.grad, what="gru_cell dx")
        assert_close(dhc, ht.grad, what="gru_cell dh")
        for g, p in zip(wg, (tc.weight_ih, tc.weight_hh, tc.bias_ih, tc.bias_hh)):
            assert_close(g, p.grad, what="gru_cell dW")


@pytest.mark.parametrize("T,B,I,H,P", [(1, 1, 1, 2, 1), (5, 3, 4, 6, 2), (3, 2, 3, 5, 4)])
def test_functional_lstm_projection_reference_and_finite_differences(T, B, I, H, P, rng):
    w = [rng.uniform(-0.6, 0.6, s) for s in ((4 * H, I), (4 * H, P), (4 * H,), (4 * H,), (P, H))]
    x, h0, c0 = rng.standard_normal((T, B, I)), rng.standard_normal((B, P)), rng.standard_normal((B, H))
    (y, hT, cT), ctx = dk.lstm(x, h0, c0, *w[:4], w_hr=w[4], return_ctx=True)
    ry, rh, rc = lstm_proj_ref(x, h0, c0, *w)
    assert_close(y, ry, what="y")
    assert_close(hT, rh, what="hT")
    assert_close(cT, rc, what="cT")
    dy, dh, dc = rng.standard_normal(y.shape), rng.standard_normal(hT.shape), rng.standard_normal(cT.shape)
    grads = dk.lstm_backward(ctx, dy, dh, dc)
    assert len(grads) == 8
    args = [x, h0, c0] + w
    order = [0, 1, 2, 3, 4, 5, 6, 7]
    for gi, ai in zip(order, range(8)):

        def f(a, ai=ai):
            aa = list(args)
            aa[ai] = a
            yy, hh, cc = dk.lstm(*aa[:7], w_hr=aa[7])
            return np.concatenate([yy.ravel(), hh.ravel(), cc.ravel()])

        num = numeric_grad(f, args[ai], np.concatenate([dy.ravel(), dh.ravel(), dc.ravel()]))
        assert_close(grads[gi], num, rtol=1e-6, atol=1e-8, what=f"lstm proj grad {gi}")


BAD = [
    (lambda: nn.LSTM(3, 4, proj_size=4), ValueError, "proj_size"),
    (lambda: nn.LSTM(3, 4, proj_size=-1), ValueError, "proj_size"),
    (lambda: nn.GRU(3, 4, dropout=1.0), ValueError, "dropout"),
    (lambda: nn.GRU(0, 4), ValueError, "input_size"),
    (lambda: nn.GRU(3, 4).forward(np.zeros((2, 5, 2))), ValueError, "'x'"),
    (lambda: nn.GRU(3, 4, num_layers=2).forward(np.zeros((2, 5, 3)), np.zeros((2, 4))), ValueError, "'h'"),
    (
        lambda: nn.LSTM(3, 4, proj_size=2).forward(np.zeros((2, 5, 3)), (np.zeros((2, 4)), np.zeros((2, 4)))),
        ValueError,
        "'h'",
    ),
    (lambda: nn.LSTM(3, 4, bidirectional=True).step(np.zeros((2, 3)), None), ValueError, "step API"),
    (lambda: dk.gru(np.zeros((2, 3)), np.zeros((2, 4)), np.zeros((12, 3)), np.zeros((12, 4))), ValueError, "'h0'"),
    (lambda: dk.gru(np.zeros((2, 1, 3)), None, np.zeros((11, 3)), np.zeros((12, 4))), ValueError, "'w_ih'"),
    (lambda: dk.gru(np.zeros((2, 1, 3)), None, np.zeros((12, 3)), np.zeros((12, 3))), ValueError, "'w_hh'"),
    (
        lambda: dk.gru_cell(np.zeros((1, 3)), None, np.zeros((12, 3)), np.zeros((12, 4)), np.zeros(5)),
        ValueError,
        "'b_ih'",
    ),
    (
        lambda: dk.lstm(np.zeros((2, 1, 3)), None, None, np.zeros((16, 3)), np.zeros((16, 4)), w_hr=np.zeros((2, 4))),
        ValueError,
        "'w_hh'",
    ),
    (
        lambda: dk.lstm(np.zeros((2, 1, 3)), None, None, np.zeros((16, 3)), np.zeros((16, 4)), w_hr=np.zeros((4, 4))),
        ValueError,
        "'w_hr'",
    ),
]


@pytest.mark.parametrize("fn,exc,match", BAD)
def test_bad_input(fn, exc, match):
    with pytest.raises(exc, match=match):
        fn()


def test_gru_step_api_matches_sequence(rng):
    m = nn.GRU(3, 4, num_layers=2, return_sequences=True, return_state=True, dtype=np.float64, seed=0)
    x = rng.standard_normal((2, 5, 3))
    y, h = m(x)
    state = m.zero_state(2)
    for t in range(5):
        yt, state, _ = m.step(x[:, t], state)
        assert_close(yt, y[:, t], what="step")
    assert_close(state[0], h, what="final")
