"""Backpropagation through time, full or truncated.

    res = dk.bptt(model, x, loss_fn, truncate=None)        # also dk.bptt.bptt(...) / dk.bptt.run(...)

runs the recurrent layer `model` (SimpleRNN, LSTM, or any layer with the step API below) over
x (B, T, F) from `initial_state` (zeros when None), hands every step's output Y (B, T, H) to
``loss_fn(Y) -> (loss, dY)`` (e.g. a Dense head and a loss, calling the head's backward inside),
then backpropagates dY through time into the model's parameters (accumulating into `.grad`).
Instead of loss_fn the gradient can be given directly as ``dy=`` (B, T, H) (or as the third
argument), or a deepkern loss with its target: ``dk.bptt(rnn, x, dk.nn.MSE(), target=y)``
(y (B, T, H): a loss on the outputs themselves).

Truncation (`truncate=k`): the forward pass is the same as without truncation (the hidden state
flows through all T steps, and on into the next call via `res.state`); only gradients are cut.

- mode="window" (default): the loss at step t sends gradient back through steps t, t-1, ...,
  t-k+1 only -- at most k steps, counting step t itself (truncate=1: no gradient through the
  recurrence at all). This is the truncated sum of the textbook derivation; it costs O(T k)
  step-backwards.
- mode="chunk": the sequence is cut into consecutive chunks of k steps and gradient flows
  within a chunk only (Williams & Peng's k1 = k2 = k; what "detach the state every k steps"
  gives in a framework). O(T).

`model` may also be a Sequential whose first layer is recurrent (with return_sequences) and
whose other layers act on each step independently (Dense, activations, Dropout, LayerNorm):
those layers then form the head, run on every step's output before loss_fn / the Loss, and
receive their gradients too; e.g. ``dk.bptt(char_rnn, x, dk.nn.SoftmaxCrossEntropy(),
target=next_chars, truncate=20)``. `outputs` is still the recurrent layer's.

truncate=None (or k >= T) is full BPTT; it runs the layer's fused whole-sequence path when it
has one (forward_sequence/backward_sequence: the dk.lstm kernel for LSTM) unless fused=False.

Returns a BPTTResult(loss, outputs, state, dx, state_grad): outputs (B, T, H), state the final
state (pass it as initial_state of the next call to carry the state forward across calls), dx
(B, T, F), and state_grad the gradient of the initial state (what reaches step 0 under the
truncation rule).

Step API a model needs: ``zero_state(batch)`` -> state tuple; ``step(x_t, state)`` ->
(y_t, new_state, cache); ``step_backward(cache, dy_t, dstate)`` -> (dx_t, dstate_prev), where
dy_t and dstate may be None (zero) and parameter gradients accumulate.
"""

import sys
import types
from collections import namedtuple

import numpy as np

from ._backend import get_array_module, is_cupy_array

BPTTResult = namedtuple("BPTTResult", ["loss", "outputs", "state", "dx", "state_grad"])

__all__ = ["bptt", "run", "detach_state", "BPTTResult"]


def detach_state(state):
    """A copy of a state tuple, for carrying it into the next truncated segment."""
    return None if state is None else tuple(s.copy() for s in state)


def _check(model, x, truncate, mode):
    for name in ("zero_state", "step", "step_backward"):
        if not callable(getattr(model, name, None)):
            raise TypeError(
                f"bptt: 'model' must have the step API (zero_state, step, step_backward); "
                f"{type(model).__name__} has no {name}()"
            )
    if x.ndim != 3:
        raise ValueError(f"bptt: 'x' must be (batch, time, features), got shape {tuple(x.shape)}")
    if truncate is not None:
        if isinstance(truncate, bool) or not isinstance(truncate, (int, np.integer)) or truncate < 1:
            raise ValueError(f"bptt: 'truncate' must be None (full BPTT) or a positive int, got {truncate!r}")
    if mode not in ("window", "chunk"):
        raise ValueError(f"bptt: 'mode' must be 'window' or 'chunk', got {mode!r}")


def bptt(model, x, loss_fn=None, *, dy=None, target=None, truncate=None, mode="window", initial_state=None, fused=True):
    """Run `model` over x and backpropagate through time; see the module docstring.

    >>> import numpy as np, deepkern as dk
    >>> rnn = dk.nn.LSTM(3, 4, return_sequences=True, seed=0)
    >>> x = np.random.default_rng(0).standard_normal((2, 10, 3)).astype(np.float32)
    >>> res = dk.bptt(rnn, x, dy=np.ones((2, 10, 4), np.float32), truncate=5)
    >>> res.outputs.shape, res.dx.shape, rnn.parameters()[0].grad.shape
    ((2, 10, 4), (2, 10, 3), (16, 3))
    """
    if loss_fn is not None and not callable(loss_fn) and hasattr(loss_fn, "shape") and dy is None:
        loss_fn, dy = None, loss_fn  # the gradient passed positionally
    if loss_fn is not None and hasattr(loss_fn, "forward") and hasattr(loss_fn, "backward"):
        if target is None:
            raise TypeError("bptt: a Loss object as 'loss_fn' needs 'target='")
        loss_obj = loss_fn
        loss_fn = lambda Y: (loss_obj.forward(Y, target), loss_obj.backward())  # noqa: E731
    if (loss_fn is None) == (dy is None):
        raise TypeError(
            "bptt: give exactly one of 'loss_fn' (callable Y -> (loss, dY), or a Loss with target=) and 'dy'"
        )
    model, loss_fn = _split_head(model, loss_fn)
    W = model.parameters()[0].value if model.parameters() else None
    xp = get_array_module(x if W is None else W)
    dt = W.dtype if W is not None else np.float64
    _same_device(xp, x=x, dy=dy, initial_state=initial_state)
    x = xp.asarray(x, dtype=dt)
    _check(model, x, truncate, mode)
    B, T, _ = x.shape
    k = T if truncate is None else min(int(truncate), T)

    if k == T and fused and hasattr(model, "forward_sequence"):
        Y, state = model.forward_sequence(x, initial_state, training=True)
        loss, dY = _loss(loss_fn, dy, Y, xp, dt)
        dx = model.backward_sequence(dY, None)
        return BPTTResult(loss, Y, state, dx, model.state_grad)

    state = model.zero_state(B) if initial_state is None else _as_state(initial_state, xp, dt)
    ys, caches = [], []
    for t in range(T):
        y, state, cache = model.step(xp.ascontiguousarray(x[:, t]), state)
        ys.append(y)
        caches.append(cache)
    Y = xp.stack(ys, axis=1)
    loss, dY = _loss(loss_fn, dy, Y, xp, dt)

    dx = xp.zeros_like(x)
    state_grad = None
    if mode == "chunk" or k == T:
        starts = range(0, T, k)
        for s0 in reversed(starts):
            dstate = None  # nothing flows in from the next chunk: the truncation
            for t in range(min(s0 + k, T) - 1, s0 - 1, -1):
                dx[:, t], dstate = model.step_backward(caches[t], dY[:, t], dstate)
            if s0 == 0:
                state_grad = dstate
    else:
        nonzero = [bool(xp.any(dY[:, t] != 0)) for t in range(T)]
        for t in range(T - 1, -1, -1):
            if not nonzero[t]:
                continue  # no loss at this step: nothing to send back
            dstate = None
            for s in range(t, max(t - k + 1, 0) - 1, -1):
                dxs, dstate = model.step_backward(caches[s], dY[:, t] if s == t else None, dstate)
                dx[:, s] += dxs
            if t - k + 1 <= 0:
                state_grad = dstate if state_grad is None else tuple(a + b for a, b in zip(state_grad, dstate))
    return BPTTResult(loss, Y, state, dx, state_grad)


def _split_head(model, loss_fn):
    """A Sequential [recurrent, per-step head...] -> (recurrent layer, loss_fn through the head)."""
    layers = getattr(model, "layers", None)
    if layers is None or callable(getattr(model, "step", None)) or not layers:
        return model, loss_fn
    rnn, head = layers[0], layers[1:]
    if not head or loss_fn is None:
        return rnn, loss_fn

    def through_head(Y):
        out = Y
        for layer in head:
            out = layer.forward(out, training=True)
        loss, d = loss_fn(out)
        for layer in reversed(head):
            d = layer.backward(d)
        return loss, d

    return rnn, through_head


def _same_device(xp, **named):
    """TypeError for an array on another device than the model's (numpy for a GPU model, cupy for a CPU one)."""
    for name, a in named.items():
        for e in a if isinstance(a, (tuple, list)) else (a,):
            if (is_cupy_array(e) or isinstance(e, np.ndarray)) and is_cupy_array(e) != (xp is not np):
                where = "a cupy array (GPU)" if is_cupy_array(e) else "a numpy array (CPU)"
                raise TypeError(
                    f"bptt: '{name}' is {where} but the model is on the {'CPU' if xp is np else 'GPU'}; "
                    "move the model with .to('cuda'/'cpu') or pass arrays on the same device"
                )


def _as_state(state, xp, dt):
    if not isinstance(state, (tuple, list)):
        state = (state,)
    return tuple(xp.asarray(s, dtype=dt) for s in state)


def _loss(loss_fn, dy, Y, xp, dt):
    if loss_fn is not None:
        out = loss_fn(Y)
        if not isinstance(out, tuple) or len(out) != 2:
            raise TypeError("bptt: 'loss_fn' must return (loss, dY) with dY of the outputs' shape")
        loss, dY = out
    else:
        loss, dY = None, dy
    dY = xp.asarray(dY, dtype=dt)
    if dY.shape != Y.shape:
        raise ValueError(f"bptt: the outputs' gradient has shape {tuple(dY.shape)}; expected {tuple(Y.shape)}")
    return loss, dY


run = bptt


class _CallableModule(types.ModuleType):
    """Lets `dk.bptt(...)` call the function while `deepkern.bptt` stays an importable module."""

    def __call__(self, *args, **kwargs):
        return bptt(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
