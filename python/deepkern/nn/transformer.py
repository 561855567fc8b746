"""The Transformer encoder block (post-norm, as in Vaswani et al. and PyTorch's default)."""

import numpy as np

from ._base import Layer, default_rng
from ._checks import positive_int
from .activations import Dropout, ReLU
from .dense import Dense
from .multihead import MultiHeadAttention
from .normalization import LayerNorm


class TransformerEncoderLayer(Layer):
    """x (B, T, dim) -> LayerNorm(x1 + FF(x1)), x1 = LayerNorm(x + SelfAttention(x)).

    FF(z) = linear2(dropout(relu(linear1(z)))), linear1: dim -> ff_dim, linear2: ff_dim -> dim.
    Dropout (p=dropout) is applied after the attention and after the feed-forward block too,
    exactly where torch.nn.TransformerEncoderLayer(dim, num_heads, ff_dim, dropout,
    batch_first=True) applies it, so its state_dict loads with `load_torch_state` and gives the
    same output. causal=True masks attention to earlier positions (a decoder-only block).
    `forward(x, attn_mask=None, training=None)` (None: the layer's train()/eval() mode); backward(dy) -> dx.
    """

    def __init__(self, dim, num_heads, ff_dim, dropout=0.0, causal=False, eps=1e-5, seed=None, dtype=np.float32):
        self.dim = positive_int("TransformerEncoderLayer", "dim", dim)
        self.ff_dim = positive_int("TransformerEncoderLayer", "ff_dim", ff_dim)
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"TransformerEncoderLayer: 'dropout' must be in [0, 1), got {dropout!r}")
        rng = default_rng(seed)
        seeds = rng.integers(0, 2**31, 6)
        self.self_attn = MultiHeadAttention(dim, num_heads, causal=causal, seed=int(seeds[0]), dtype=dtype)
        self.linear1 = Dense(dim, ff_dim, seed=int(seeds[1]), dtype=dtype)
        self.linear2 = Dense(ff_dim, dim, seed=int(seeds[2]), dtype=dtype)
        self.norm1 = LayerNorm(dim, eps=eps, dtype=dtype)
        self.norm2 = LayerNorm(dim, eps=eps, dtype=dtype)
        self.relu = ReLU()
        self.dropout = Dropout(dropout, seed=int(seeds[3]))
        self.dropout1 = Dropout(dropout, seed=int(seeds[4]))
        self.dropout2 = Dropout(dropout, seed=int(seeds[5]))

    def forward(self, x, attn_mask=None, training=None):
        training = self._mode(training)
        a = self.dropout1.forward(self.self_attn.forward(x, attn_mask=attn_mask, training=training), training)
        x1 = self.norm1.forward(x + a, training)
        h = self.dropout.forward(self.relu.forward(self.linear1.forward(x1, training), training), training)
        f = self.dropout2.forward(self.linear2.forward(h, training), training)
        return self.norm2.forward(x1 + f, training)

    def __call__(self, x, attn_mask=None, training=None):
        return self.forward(x, attn_mask=attn_mask, training=self._mode(training))

    def backward(self, dy):
        d = self.norm2.backward(dy)  # gradient at x1 + f
        df = self.dropout2.backward(d)
        dh = self.linear2.backward(df)
        dx1 = d + self.linear1.backward(self.relu.backward(self.dropout.backward(dh)))
        d = self.norm1.backward(dx1)  # gradient at x + a
        return d + self.self_attn.backward(self.dropout1.backward(d))

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def torch_state_dict(self):
        out = {}
        for name in ("self_attn", "linear1", "linear2", "norm1", "norm2"):
            out.update({f"{name}.{k}": v for k, v in getattr(self, name).torch_state_dict().items()})
        return out

    def load_torch_state(self, prefix, state):
        """From torch.nn.TransformerEncoderLayer(dim, num_heads, ff_dim, batch_first=True) (relu, post-norm)."""
        k = (prefix + ".") if prefix else ""
        self.self_attn.load_torch_state(k + "self_attn", state)
        for name in ("linear1", "linear2", "norm1", "norm2"):
            getattr(self, name).load_torch_state(k + name, state)
