"""The five sequence-model shapes of the course, each trained on a tiny task that needs it:
one-to-one (XOR-like circles: a plain MLP), many-to-one (sum of a sequence), one-to-many
(generate a cyclic sequence from one class), many-to-many synchronised (running count), and
encoder-decoder (sequence reversal, with Bahdanau and with Luong attention)."""

import deepkern as dk
import numpy as np
import pytest
from seq_checks import one_thread

nn = dk.nn


@pytest.fixture(autouse=True)
def _seeded_one_thread():
    # Small models: many tiny kernel calls, where a second OpenMP thread on a shared, loaded
    # machine only adds fork/join waits. What is tested here is learning, not threading.
    nn.manual_seed(0)
    with one_thread():
        yield


def test_one_to_one_mlp_circles():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (600, 2))
    y = (np.sum(x * x, axis=1) < 0.5).astype(np.int64)  # inside/outside a circle: not linearly separable
    model = nn.Sequential([nn.Dense(2, 16), nn.Tanh(), nn.Dense(16, 2)])
    model.fit(
        x[:500],
        y[:500],
        nn.SoftmaxCrossEntropy(),
        dk.optim.Adam(model.parameters(), lr=0.03),
        epochs=40,
        batch_size=50,
        progress=False,
        seed=0,
    )
    acc = np.mean(np.argmax(model.predict(x[500:]), axis=1) == y[500:])
    assert acc >= 0.93, acc


def test_many_to_one_sequence_sum():
    """Read a whole sequence, answer once: y = sum_t x_t (LSTM, return_sequences=False)."""
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (800, 6, 1)).astype(np.float32)
    y = x.sum(axis=(1, 2))[:, None]
    model = nn.Sequential([nn.LSTM(1, 16), nn.Dense(16, 1)])
    model.fit(
        x[:700],
        y[:700],
        nn.MSE(),
        dk.optim.Adam(model.parameters(), lr=0.02),
        epochs=30,
        batch_size=50,
        progress=False,
        seed=0,
    )
    pred = model.predict(x[700:])
    r2 = 1 - np.mean((pred - y[700:]) ** 2) / np.var(y[700:])
    assert r2 > 0.95, r2


def test_one_to_many_generate_sequence():
    """One input (a class c of 4), a sequence out: tokens (c + t) mod 4 for t = 0..5.
    The class sets the RNN's initial state, h0 = tanh(W c); the RNN then runs on its own."""
    C, T, H = 4, 6, 16
    enc, act = nn.Dense(C, H), nn.Tanh()
    rnn = nn.SimpleRNN(1, H, return_sequences=True)
    head = nn.Dense(H, C)
    params = enc.parameters() + rnn.parameters() + head.parameters()
    opt = dk.optim.Adam(params, lr=0.02)
    ce = nn.SoftmaxCrossEntropy()
    rng = np.random.default_rng(2)
    zeros = np.zeros((32, T, 1), np.float32)
    for _ in range(150):
        c = rng.integers(0, C, 32)
        target = (c[:, None] + np.arange(T)) % C
        opt.zero_grad()
        h0 = act.forward(enc.forward(np.eye(C, dtype=np.float32)[c]))
        logits = head.forward(rnn.forward(zeros, h0))
        ce.forward(logits, target)
        rnn.backward(head.backward(ce.backward()))
        enc.backward(act.backward(rnn.state_grad[0]))
        opt.step()
    c = np.arange(C)
    h0 = act.forward(enc.forward(np.eye(C, dtype=np.float32)[c]), training=False)
    pred = np.argmax(head.forward(rnn.forward(np.zeros((C, T, 1)), h0, training=False), training=False), axis=-1)
    np.testing.assert_array_equal(pred, (c[:, None] + np.arange(T)) % C)


def test_many_to_many_running_count():
    """An output at every step, in sync with the input: y_t = number of ones in x_1..x_t."""
    rng = np.random.default_rng(3)
    x = rng.integers(0, 2, (600, 8, 1)).astype(np.float32)
    y = np.cumsum(x, axis=1)
    model = nn.Sequential([nn.LSTM(1, 16, return_sequences=True), nn.Dense(16, 1)])
    model.fit(
        x[:500],
        y[:500],
        nn.MSE(),
        dk.optim.Adam(model.parameters(), lr=0.02),
        epochs=30,
        batch_size=50,
        progress=False,
        seed=0,
    )
    pred = model.predict(x[500:])
    assert np.mean(np.round(pred) == y[500:]) > 0.95


def _reversal_data(rng, n, S, V):
    src = rng.integers(1, V, (n, S))  # tokens 1..V-1; 0 is the decoder's start token
    tgt = src[:, ::-1]
    tgt_in = np.concatenate([np.zeros((n, 1), np.int64), tgt[:, :-1]], axis=1)  # teacher forcing
    return src, tgt, tgt_in


@pytest.mark.parametrize("attention", ["bahdanau", "luong"])
def test_encoder_decoder_reversal(attention):
    """Encoder LSTM reads the sequence; an attention decoder writes it reversed (greedy decoding)."""
    V, S, H, B = 6, 5, 24, 32
    onehot = np.eye(V, dtype=np.float32)
    enc = nn.LSTM(V, H, return_sequences=True, return_state=True)
    if attention == "bahdanau":
        dec = nn.AttentionDecoder(nn.LSTM(V + H, H), nn.BahdanauAttention(H, H))
    else:
        dec = nn.AttentionDecoder(nn.LSTM(V, H), nn.LuongAttention(H, score="general"))
    head = nn.Dense(2 * H, V)
    params = enc.parameters() + dec.parameters() + head.parameters()
    opt = dk.optim.Adam(params, lr=0.02)
    ce = nn.SoftmaxCrossEntropy()
    rng = np.random.default_rng(4)
    for _ in range(250):
        src, tgt, tgt_in = _reversal_data(rng, B, S, V)
        opt.zero_grad()
        keys, h, c = enc.forward(onehot[src])
        logits = head.forward(dec.forward(onehot[tgt_in], keys, initial_state=(h, c)))
        ce.forward(logits, tgt)
        _, dkeys, _ = dec.backward(head.backward(ce.backward()))
        enc.backward((dkeys, *dec.state_grad))
        opt.step()
    src, tgt, _ = _reversal_data(rng, 200, S, V)
    keys, h, c = enc.forward(onehot[src], training=False)
    state, tok, pred, align = (h, c), np.zeros(200, np.int64), [], []
    for _ in range(S):  # greedy: feed back the model's own previous token
        out, state = dec.decode_step(onehot[tok], state, keys)
        align.append(dec.attention.alignment)
        tok = np.argmax(head.forward(out, training=False), axis=-1)
        pred.append(tok)
    acc = np.mean(np.stack(pred, 1) == tgt)
    assert acc > 0.9, acc
    # what attention learned: output t looks at input S-1-t (the anti-diagonal)
    looks_at = np.argmax(np.stack(align, 1), axis=-1)
    assert np.mean(looks_at == np.arange(S)[::-1]) > 0.8
