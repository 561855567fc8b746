"""Truncated vs full backpropagation through time on a long-dependency task: accuracy vs k.

The task: a stream of random symbols (4 kinds, one-hot); at every step t >= D the network must
output the symbol it read D = 4 steps earlier (y_t = x_{t-D}). An LSTM (hidden 32) with a dense
read-out is trained with dk.bptt at several truncation lengths k:

- mode "window" (the textbook truncation): the loss at step t sends gradient back through steps
  t, t-1, ..., t-k+1 only. The input x_{t-D} is reached only when k >= D + 1, so for k <= D the
  network cannot learn the dependency (it stays near chance, 25%, a little above it from what
  the untrained recurrent state happens to carry along) and for k >= D + 1 it learns it fully.
- mode "chunk" (what "detach the state every k steps" does in a framework): gradient flows only
  within consecutive blocks of k steps, so only the targets whose source lies in the same block
  teach the dependency; since the weights are shared, a few are enough once k > D.

The forward pass is the same in every case (the hidden state flows through all T steps); only
the gradient is cut. Accuracy is measured on fresh sequences, over the steps t >= D.

    python examples/truncated_bptt.py [--quick]
"""

import deepkern as dk
import numpy as np
from _common import Timer, cli, pyplot, save  # first: sets thread env vars before numpy loads

nn = dk.nn
V, D, T, H = 4, 4, 16, 32  # symbols, delay, sequence length, hidden size


def batch(rng, B):
    s = rng.integers(0, V, size=(B, T))
    x = np.eye(V, dtype=np.float32)[s]
    return x, s  # target at t >= D is s[:, t - D]


def train(k, mode, steps, seed=0):
    lstm = nn.LSTM(V, H, seed=seed)
    head = nn.Dense(H, V, seed=seed + 1)
    opt = dk.optim.Adam(lstm.parameters() + head.parameters(), lr=1e-2)
    ce = nn.SoftmaxCrossEntropy()
    rng = np.random.default_rng(seed + 10)

    for _ in range(steps):
        x, s = batch(rng, 64)

        def loss_fn(Y):
            logits = head.forward(Y)
            loss = ce.forward(logits[:, D:], s[:, :-D])
            dlogits = np.zeros_like(logits)
            dlogits[:, D:] = ce.backward()
            return loss, head.backward(dlogits)

        opt.zero_grad()
        dk.bptt(lstm, x, loss_fn, truncate=k, mode=mode)
        dk.optim.clip_grad_norm(opt.params, 1.0)
        opt.step()
    x, s = batch(np.random.default_rng(999), 512)  # fresh test sequences
    Y, _ = lstm.forward_sequence(x, training=False)  # every step's hidden state (B, T, H)
    pred = head.forward(Y, training=False).argmax(axis=-1)
    return float((pred[:, D:] == s[:, :-D]).mean())


def main(quick=False, out_dir="examples/out"):
    dk.set_num_threads(1)
    steps = 30 if quick else 400
    ks = [1, 3, 5, T] if quick else [1, 2, 3, 4, 5, 6, 8, 12, T]
    results = {}
    with Timer() as t:
        for mode in ("window", "chunk"):
            for k in ks:
                if mode == "chunk" and k == T:
                    results[(mode, k)] = results[("window", k)]  # k = T is full BPTT in both modes
                    continue
                results[(mode, k)] = train(None if k == T else k, mode, steps)
                print(
                    f"  truncate={k if k < T else 'None (full)':>12}  mode={mode:6s}  test accuracy "
                    f"{results[(mode, k)] * 100:5.1f}%",
                    flush=True,
                )
    print(f"task: y_t = x_(t-{D}), T = {T}, {steps} Adam steps of 64 sequences per setting; {t.seconds:.1f} s in all")

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.8))
    for mode, style in (("window", "o-"), ("chunk", "s--")):
        ax.plot(ks, [results[(mode, k)] * 100 for k in ks], style, label=f"truncated BPTT, mode='{mode}'")
    ax.axvline(D + 0.5, color="0.5", lw=0.8)
    ax.text(D + 0.6, 50, f"k = D + 1 = {D + 1}: the\ngradient reaches x_(t-D)", fontsize=8, color="0.3")
    ax.axhline(100 / V, color="tab:gray", ls=":", label="chance")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks)
    ax.set_xticklabels([str(k) if k < T else f"{T}\n(full)" for k in ks])
    ax.set(
        xlabel="truncation length k (steps the gradient may travel back)",
        ylabel="test accuracy (%)",
        title=f"Remember the symbol from D = {D} steps ago: accuracy vs k",
        ylim=(0, 105),
    )
    ax.legend(loc="lower right")
    save(fig, out_dir, "truncated_bptt.png")
    return {f"{m}_{k}": v for (m, k), v in results.items()}


if __name__ == "__main__":
    main(**cli(__doc__))
