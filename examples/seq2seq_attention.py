"""Seq2seq translation of a toy language, with Bahdanau attention, with Luong attention and
without attention.

The toy language: a sentence of L words (L = 3..16) over 12 source words translates word by word
through a fixed dictionary, in *reversed* word order ("a b c" -> "Z Y X"): the model must learn
both the dictionary and the reordering. An LSTM encoder (hidden 64) reads the source; an LSTM
decoder, trained with teacher forcing, writes the target; greedy decoding is evaluated on fresh
sentences of each length.

- Bahdanau (additive): the decoder's *previous* state s_{t-1} scores every encoder output; the
  context c_t is fed into the step together with the previous word: s_t = LSTM([y_{t-1}; c_t], s_{t-1}).
- Luong ("general" score): the decoder steps first; its *current* state h_t scores the encoder
  outputs and the context is combined afterwards, h~_t = tanh(W_c [c_t; h_t]).
- No attention: the decoder sees the source only through the encoder's final (h, c), a fixed-size
  bottleneck; its accuracy falls as sentences grow longer.

Figures: accuracy vs sentence length for the three models, and the alignment matrices (the
attention weights of every output word over the source words) of both attention models.

    python examples/seq2seq_attention.py [--quick]
"""

import deepkern as dk
import numpy as np
from _common import Timer, cli, pyplot, save  # first: sets thread env vars before numpy loads

nn = dk.nn
SRC_WORDS = list("abcdefghijkl")
TGT_WORDS = list("QWERTYUIOPZX")  # target word i translates source word i
NW = len(SRC_WORDS)
SOS = NW  # the decoder's start token (target vocabulary: NW words + SOS)
E, H = 32, 64


def sentences(rng, B, L):
    """src (B, L) word ids; tgt (B, L): translations in reversed order."""
    src = rng.integers(0, NW, size=(B, L))
    return src, src[:, ::-1].copy()


class Seq2Seq:
    """Encoder shared by the three models; subclasses define the decoder."""

    def __init__(self, seed):
        self.src_emb = nn.Embedding(NW, E, seed=seed)
        self.encoder = nn.LSTM(E, H, return_sequences=True, return_state=True, seed=seed + 1)
        self.tgt_emb = nn.Embedding(NW + 1, E, seed=seed + 2)
        self.build(seed + 3)
        self.ce = nn.SoftmaxCrossEntropy()

    def parameters(self):
        layers = [v for v in vars(self).values() if isinstance(v, nn.Layer)]
        return [p for layer in layers for p in layer.parameters()]

    def encode(self, src, training):
        return self.encoder.forward(self.src_emb.forward(src, training), training=training)  # (enc, h, c)

    def train_step(self, src, tgt, opt):
        """Teacher forcing: the decoder reads [SOS, y_0, ..., y_{T-2}] and predicts y_0..y_{T-1}."""
        opt.zero_grad()
        enc, h, c = self.encode(src, True)
        tgt_in = np.concatenate([np.full((len(tgt), 1), SOS), tgt[:, :-1]], axis=1)
        logits = self.decode_train(enc, (h, c), self.tgt_emb.forward(tgt_in))
        loss = self.ce.forward(logits, tgt)
        denc, dh, dc, demb = self.decode_backward(self.ce.backward())
        self.tgt_emb.backward(demb)
        self.src_emb.backward(self.encoder.backward((denc, dh, dc)))
        dk.optim.clip_grad_norm(opt.params, 1.0)
        opt.step()
        return loss

    def greedy(self, src):
        """Greedy decoding of len(src) words -> (predicted ids (B, L), alignments (B, L, S) or None)."""
        enc, h, c = self.encode(src, False)
        state, y = (h, c), np.full(len(src), SOS)
        preds, aligns = [], []
        for _ in range(src.shape[1]):
            logits, state, a = self.decode_step(enc, state, self.tgt_emb.forward(y, training=False))
            y = logits.argmax(axis=-1)
            preds.append(y)
            aligns.append(a)
        return np.stack(preds, axis=1), (None if aligns[0] is None else np.stack(aligns, axis=1))


class NoAttention(Seq2Seq):
    name = "no attention"

    def build(self, seed):
        self.decoder = nn.LSTM(E, H, return_sequences=True, seed=seed)
        self.out = nn.Dense(H, NW, seed=seed + 1)

    def decode_train(self, enc, state, emb):
        return self.out.forward(self.decoder.forward(emb, initial_state=state))

    def decode_backward(self, dlogits):
        demb = self.decoder.backward(self.out.backward(dlogits))
        dh, dc = self.decoder.state_grad
        return None, dh, dc, demb  # the encoder's outputs get no gradient: only its final state is used

    def decode_step(self, enc, state, emb):
        h, state, _ = self.decoder.step(emb, state)
        return self.out.forward(h, training=False), state, None


class Luong(Seq2Seq):
    name = "Luong attention"

    def build(self, seed):
        self.decoder = nn.LSTM(E, H, return_sequences=True, seed=seed)
        self.attn = nn.LuongAttention(H, score="general", seed=seed + 1)
        self.combine = nn.Dense(2 * H, H, seed=seed + 2)
        self.tanh = nn.Tanh()
        self.out = nn.Dense(H, NW, seed=seed + 3)

    def _head(self, ctx, hd, training):
        cat = np.concatenate([ctx, hd], axis=-1)
        return self.out.forward(self.tanh.forward(self.combine.forward(cat, training), training), training)

    def decode_train(self, enc, state, emb):
        hd = self.decoder.forward(emb, initial_state=state)  # every decoder state h_t at once
        ctx = self.attn.forward(hd, enc)  # (B, T, H): all steps attend in one call
        return self._head(ctx, hd, True)

    def decode_backward(self, dlogits):
        dcat = self.combine.backward(self.tanh.backward(self.out.backward(dlogits)))
        dctx, dhd = dcat[..., :H], dcat[..., H:]
        dq, dkeys, _ = self.attn.backward(dctx)  # values = keys: dkeys holds both gradients
        demb = self.decoder.backward(dhd + dq)
        dh, dc = self.decoder.state_grad
        return dkeys, dh, dc, demb

    def decode_step(self, enc, state, emb):
        h, state, _ = self.decoder.step(emb, state)
        ctx, _ = self.attn.attend(h, enc)
        return self._head(ctx, h, False), state, self.attn.alignment.copy()


class Bahdanau(Seq2Seq):
    name = "Bahdanau attention"

    def build(self, seed):
        self.decoder = nn.LSTM(E + H, H, seed=seed)  # driven step by step
        self.attn = nn.BahdanauAttention(H, units=H, seed=seed + 1)
        self.out = nn.Dense(2 * H, NW, seed=seed + 2)

    def decode_train(self, enc, state, emb):
        hs, ctxs, self._caches = [], [], []
        for t in range(emb.shape[1]):
            ctx, acache = self.attn.attend(state[0], enc)  # scored with the previous state s_{t-1}
            h, state, lcache = self.decoder.step(np.concatenate([emb[:, t], ctx], axis=1), state)
            hs.append(h)
            ctxs.append(ctx)
            self._caches.append((acache, lcache))
        self._enc_shape = enc.shape
        return self.out.forward(np.concatenate([np.stack(hs, 1), np.stack(ctxs, 1)], axis=-1))

    def decode_backward(self, dlogits):
        dcat = self.out.backward(dlogits)
        dh_out, dctx_out = dcat[..., :H], dcat[..., H:]
        denc = np.zeros(self._enc_shape, dlogits.dtype)
        demb = np.zeros(dh_out.shape[:2] + (E,), dlogits.dtype)
        dstate = None
        for t in range(len(self._caches) - 1, -1, -1):
            acache, lcache = self._caches[t]
            dx, dstate = self.decoder.step_backward(lcache, dh_out[:, t], dstate)
            demb[:, t] = dx[:, :E]
            dq, dkeys, _ = self.attn.attend_backward(acache, dx[:, E:] + dctx_out[:, t])
            denc += dkeys
            dstate = (dstate[0] + dq, dstate[1])  # the query was s_{t-1}: its gradient joins the state's
        return denc, dstate[0], dstate[1], demb

    def decode_step(self, enc, state, emb):
        ctx, _ = self.attn.attend(state[0], enc)
        a = self.attn.alignment.copy()
        h, state, _ = self.decoder.step(np.concatenate([emb, ctx], axis=1), state)
        return self.out.forward(np.concatenate([h, ctx], axis=1), training=False), state, a


def evaluate(model, lengths, n=256, seed=123):
    rng = np.random.default_rng(seed)
    acc = {}
    for L in lengths:
        src, tgt = sentences(rng, n, L)
        pred, _ = model.greedy(src)
        acc[L] = (float((pred == tgt).mean()), float((pred == tgt).all(axis=1).mean()))
    return acc


def main(quick=False, out_dir="examples/out"):
    dk.set_num_threads(1)
    Lmin, Lmax = 3, (8 if quick else 16)
    steps = 40 if quick else 1500
    lengths = list(range(Lmin, Lmax + 1))
    models, results, losses = [Bahdanau(0), Luong(0), NoAttention(0)], {}, {}
    for model in models:
        rng = np.random.default_rng(1)
        opt = dk.optim.Adam(model.parameters(), lr=3e-3)
        with Timer() as t:
            losses[model.name] = [
                model.train_step(*sentences(rng, 64, int(rng.integers(Lmin, Lmax + 1))), opt) for _ in range(steps)
            ]
        results[model.name] = evaluate(model, lengths, n=64 if quick else 256)
        acc = results[model.name]
        word = np.mean([acc[L][0] for L in lengths])
        print(
            f"{model.name:>18s}: {steps} steps in {t.seconds:5.1f} s; word accuracy {word * 100:5.1f}% "
            f"(length {Lmin}: {acc[Lmin][0] * 100:5.1f}%, length {Lmax}: {acc[Lmax][0] * 100:5.1f}%); "
            f"whole sentences right at length {Lmax}: {acc[Lmax][1] * 100:5.1f}%",
            flush=True,
        )

    src, tgt = sentences(np.random.default_rng(7), 1, 10 if not quick else 6)
    to_s = lambda ids, words: " ".join(words[i] for i in ids)  # noqa: E731
    print(f"\nexample: {to_s(src[0], SRC_WORDS)}  ->  {to_s(tgt[0], TGT_WORDS)} (reference)")
    aligns = {}
    for model in models:
        pred, a = model.greedy(src)
        print(f"  {model.name:>18s}: {to_s(pred[0], TGT_WORDS)}")
        if a is not None:
            aligns[model.name] = a[0]

    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8), gridspec_kw={"width_ratios": [1.3, 1, 1]})
    for model in models:
        axes[0].plot(lengths, [results[model.name][L][0] * 100 for L in lengths], "o-", label=model.name)
    axes[0].set(
        xlabel="sentence length (words)",
        ylabel="word accuracy, greedy decoding (%)",
        ylim=(0, 102),
        title="Attention vs the fixed-size bottleneck",
    )
    axes[0].legend(loc="lower left")
    for ax, (name, a) in zip(axes[1:], aligns.items()):
        ax.imshow(a, cmap="viridis", vmin=0, vmax=1)
        ax.set_xticks(range(src.shape[1]))
        ax.set_xticklabels([SRC_WORDS[i] for i in src[0]])
        ax.set_yticks(range(a.shape[0]))
        ax.set_yticklabels([TGT_WORDS[i] for i in tgt[0]])
        ax.set(xlabel="source word", ylabel="output word", title=f"{name}: alignment")
    save(fig, out_dir, "seq2seq_attention.png")
    return {name: {L: acc for L, acc in r.items()} for name, r in results.items()}


if __name__ == "__main__":
    main(**cli(__doc__))
