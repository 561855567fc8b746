"""One description per public functional op, shared by the tests/test_reliability_*.py files.

Each OpSpec knows how to build a small valid call, run the forward (and the backward through
its ctx), and run the same call in PyTorch. The reliability tests (bad input, fuzzing, threads,
determinism) are written once against this interface; adding an op means adding one spec here.
An op whose function is not (yet) in deepkern is skipped, so the table grows as branches land.
"""

import deepkern as dk
import numpy as np
import reference as R
import torch
import torch.nn.functional as F


def pair(v):
    return (v, v) if isinstance(v, (int, np.integer)) else tuple(v)


class OpSpec:
    name = None  # the public forward function
    backward_name = None  # the public backward function
    arrays = ()  # array arguments, in call order
    optional = ()  # array arguments that may be None
    params = ()  # int-or-pair size arguments (kernel_size, stride, ...)
    grad_names = ()  # the backward's upstream-gradient arguments, in order
    optional_grads = ()  # those that may be None
    thread_count_invariant = False  # True: the same bits at any dk.set_num_threads

    def medium(self):
        """make() keyword arguments for a call big enough that several threads share it."""
        return {}

    def available(self):
        return hasattr(dk, self.name) and hasattr(dk, self.backward_name)

    def make(self, rng, dtype):
        """A small valid call: dict of keyword arguments (arrays and parameters)."""
        raise NotImplementedError

    def call(self, kw, **extra):
        return getattr(dk, self.name)(**kw, **extra)

    def forward(self, kw):
        """The forward's outputs as a tuple of arrays."""
        out = self.call(kw)
        return out if isinstance(out, tuple) else (out,)

    def forward_ctx(self, kw):
        out, ctx = self.call(kw, return_ctx=True)
        return (out if isinstance(out, tuple) else (out,)), ctx

    def grad_shapes(self, outs):
        """Shapes of the upstream gradients the backward takes, in order."""
        return [o.shape for o in outs]

    def backward(self, ctx, grads):
        return getattr(dk, self.backward_name)(ctx, *grads)

    def torch_run(self, kw, grads):
        """(forward outputs, input grads) in PyTorch, float64 numpy, for the same call."""
        raise NotImplementedError

    def bad_calls(self):
        """Op-specific bad inputs: (id, mutate(kw) -> kw, exception, match)."""
        return []

    def empty_calls(self):
        """mutate(kw) -> kw giving a valid call with a zero-size batch (empty outputs)."""
        return []

    def nonfinite_targets(self, value):
        """The array arguments that get NaN/inf in the compare-with-torch test."""
        return self.arrays

    # -- fuzzing (hypothesis): a random valid call and the float64 reference for it
    def draw(self, data, st, rng, dtype):
        """A random valid call (dict of keyword arguments) drawn with hypothesis `data`."""
        raise NotImplementedError

    def reference(self, kw, grads):
        """(forward outputs, input grads) of the float64 reference in tests/reference/."""
        raise NotImplementedError


def draw_values(data, st, rng, shape, dtype, specials=True):
    """An array of `shape`: normal values, small integers (ties), or with NaN/inf sprinkled in;
    in a random memory layout (C, strided slice, Fortran, negative strides) with the same values.
    specials=False leaves out NaN/inf (only where a known bug is pinned by an xfail test)."""
    kinds = ["normal", "ties", "specials"] if specials else ["normal", "ties"]
    kind = data.draw(st.sampled_from(kinds), label="values")
    if kind == "ties":
        a = rng.integers(-2, 3, size=shape).astype(dtype)
    else:
        a = rng.standard_normal(shape).astype(dtype)
    if kind == "specials" and a.size:
        flat = a.reshape(-1)
        at = rng.choice(flat.size, size=max(1, flat.size // 8), replace=False)
        flat[at] = rng.choice(np.array([np.nan, np.inf, -np.inf], dtype=dtype), size=at.size)
    layout = data.draw(st.sampled_from(["C", "strided", "F", "reversed"]), label="layout")
    if layout == "strided":
        big = np.zeros(a.shape[:-1] + (3 * a.shape[-1],), dtype)
        big[..., ::3] = a
        return big[..., ::3]
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "reversed":
        return np.ascontiguousarray(a[..., ::-1])[..., ::-1]
    return a


def _t(a):
    return torch.tensor(np.asarray(a), requires_grad=True)


class _Pool(OpSpec):
    arrays = ("x",)
    params = ("kernel_size", "stride", "padding")
    grad_names = ("dy",)
    thread_count_invariant = True  # one thread owns each output row; windows in a fixed order

    def medium(self):
        return dict(shape=(4, 8, 33, 31))

    def empty_calls(self):
        return [lambda kw: {**kw, "x": kw["x"][:0]}, lambda kw: {**kw, "x": kw["x"][:, :0]}]

    def make(self, rng, dtype, shape=(2, 3, 7, 8), kernel_size=3, stride=2, padding=1):
        x = rng.standard_normal(shape).astype(dtype)
        return dict(x=x, kernel_size=kernel_size, stride=stride, padding=padding)

    def bad_calls(self):
        op = self.name
        return [
            # (C, H, W) is an unbatched sample, as in PyTorch; 2-D and 5-D are not
            ("x_2d", lambda kw: {**kw, "x": kw["x"][0, 0]}, ValueError, rf"{op}: 'x' must be a 4-D .* or 3-D"),
            ("x_5d", lambda kw: {**kw, "x": kw["x"][None]}, ValueError, rf"{op}: 'x' must be a 4-D"),
            ("x_scalar", lambda kw: {**kw, "x": 1.0}, ValueError, rf"{op}: 'x' must be a 4-D"),
            ("kernel_0", lambda kw: {**kw, "kernel_size": 0}, ValueError, "'kernel_size' must be >= 1"),
            ("kernel_neg", lambda kw: {**kw, "kernel_size": (3, -2)}, ValueError, "'kernel_size' must be >= 1"),
            ("kernel_float", lambda kw: {**kw, "kernel_size": 2.0}, TypeError, "'kernel_size' must be an int"),
            ("kernel_str", lambda kw: {**kw, "kernel_size": "2"}, TypeError, "'kernel_size' must be an int"),
            ("kernel_bool", lambda kw: {**kw, "kernel_size": True}, TypeError, "'kernel_size' must be an int"),
            ("kernel_triple", lambda kw: {**kw, "kernel_size": (2, 2, 2)}, TypeError, "'kernel_size' must be an int"),
            ("kernel_none", lambda kw: {**kw, "kernel_size": None}, TypeError, "'kernel_size' must be an int"),
            (
                "kernel_2e40",
                lambda kw: {**kw, "kernel_size": 2**40, "padding": 0},
                ValueError,
                "'kernel_size' .* is larger than the padded input",
            ),
            ("kernel_2e70", lambda kw: {**kw, "kernel_size": 2**70, "padding": 0}, ValueError, "'kernel_size'"),
            (
                "kernel_gt_input",
                lambda kw: {**kw, "kernel_size": (8, 2), "padding": 0},
                ValueError,
                "'kernel_size' .* is larger than the padded input",
            ),
            ("stride_0", lambda kw: {**kw, "stride": 0}, ValueError, "'stride' must be >= 1"),
            ("stride_neg", lambda kw: {**kw, "stride": (1, -1)}, ValueError, "'stride' must be >= 1"),
            ("stride_float", lambda kw: {**kw, "stride": 1.5}, TypeError, "'stride' must be an int"),
            ("padding_neg", lambda kw: {**kw, "padding": -1}, ValueError, "'padding' must be >= 0"),
            ("padding_gt_half", lambda kw: {**kw, "padding": 2}, ValueError, "'padding' .* must be at most half"),
            (
                "padding_2e62",
                lambda kw: {**kw, "padding": 2**62},
                ValueError,
                "'padding' .*must be (at most half|<= 2\\*\\*40)",
            ),
            (
                "zero_height",
                lambda kw: {**kw, "x": kw["x"][:, :, :0], "padding": 0},
                ValueError,
                "'kernel_size' .* is larger than the padded input",
            ),
            ("ceil_mode_int", lambda kw: {**kw, "ceil_mode": 1}, TypeError, "'ceil_mode' must be a bool"),
            ("ceil_mode_none", lambda kw: {**kw, "ceil_mode": None}, TypeError, "'ceil_mode' must be a bool"),
        ] + self.more_bad_calls()

    def more_bad_calls(self):
        return []

    def draw(self, data, st, rng, dtype):
        kh, kw_ = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
        stride = data.draw(st.one_of(st.none(), st.tuples(st.integers(1, 5), st.integers(1, 5))))
        ph, pw = data.draw(st.integers(0, kh // 2)), data.draw(st.integers(0, kw_ // 2))
        extra = self.draw_extra(data, st)
        dh, dw = extra.get("dilation", (1, 1))
        eh, ew = dh * (kh - 1) + 1, dw * (kw_ - 1) + 1
        H = data.draw(st.integers(max(1, eh - 2 * ph), 13))
        # wide rows too: the vector-block paths need >= 16 float columns whose windows avoid the padding
        W = data.draw(st.one_of(st.integers(max(1, ew - 2 * pw), 13), st.integers(30, 90)))
        N, C = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3))
        x = draw_values(data, st, rng, (N, C, H, W), dtype)
        return dict(x=x, kernel_size=(kh, kw_), stride=stride, padding=(ph, pw), **extra)

    def draw_extra(self, data, st):
        """PyTorch's other arguments of this pooling op, drawn (not every call passes them)."""
        return {}

    def _kps(self, kw):
        k = pair(kw["kernel_size"])
        return k, (k if kw["stride"] is None else pair(kw["stride"])), pair(kw["padding"])


class MaxPool2dSpec(_Pool):
    name, backward_name = "max_pool2d", "max_pool2d_backward"

    def more_bad_calls(self):
        return [
            ("dilation_0", lambda kw: {**kw, "dilation": 0}, ValueError, "'dilation' must be >= 1"),
            ("dilation_float", lambda kw: {**kw, "dilation": 1.5}, TypeError, "'dilation' must be an int"),
            ("dilation_too_big", lambda kw: {**kw, "dilation": 5}, ValueError, "dilated extent"),
        ]

    def call(self, kw, **extra):
        return dk.max_pool2d(**kw, return_indices=True, **extra)

    def grad_shapes(self, outs):
        return [outs[0].shape]  # indices take no gradient

    def draw_extra(self, data, st):
        if not data.draw(st.booleans(), label="max_pool2d extra arguments"):
            return {}
        return dict(
            dilation=(data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))), ceil_mode=data.draw(st.booleans())
        )

    def torch_run(self, kw, grads):
        x = _t(np.asarray(kw["x"], dtype=np.float64))
        s = kw["stride"] if kw["stride"] is not None else kw["kernel_size"]
        y, idx = F.max_pool2d(
            x,
            kw["kernel_size"],
            s,
            kw["padding"],
            kw.get("dilation", 1),
            kw.get("ceil_mode", False),
            return_indices=True,
        )
        y.backward(torch.tensor(np.asarray(grads[0], dtype=np.float64)))
        return (y.detach().numpy(), idx.numpy()), (x.grad.numpy(),)

    def reference(self, kw, grads):
        k, s, p = self._kps(kw)
        y, idx = R.max_pool2d_ref(kw["x"], k, s, p, pair(kw.get("dilation", 1)), kw.get("ceil_mode", False))
        return (y, idx), (R.max_pool2d_backward_ref(np.shape(kw["x"]), idx, grads[0]),)


class AvgPool2dSpec(_Pool):
    name, backward_name = "avg_pool2d", "avg_pool2d_backward"

    def more_bad_calls(self):
        return [
            (
                "count_include_pad_str",
                lambda kw: {**kw, "count_include_pad": "no"},
                TypeError,
                "'count_include_pad' must be a bool",
            ),
            (
                "divisor_0",
                lambda kw: {**kw, "divisor_override": 0},
                ValueError,
                "'divisor_override' must be None or a positive int",
            ),
            (
                "divisor_neg",
                lambda kw: {**kw, "divisor_override": -3},
                ValueError,
                "'divisor_override' must be None or a positive int",
            ),
            (
                "divisor_float",
                lambda kw: {**kw, "divisor_override": 2.5},
                ValueError,
                "'divisor_override' must be None or a positive int",
            ),
        ]

    def draw_extra(self, data, st):
        if not data.draw(st.booleans(), label="avg_pool2d extra arguments"):
            return {}
        return dict(
            ceil_mode=data.draw(st.booleans()),
            count_include_pad=data.draw(st.booleans()),
            divisor_override=data.draw(st.one_of(st.none(), st.integers(1, 20))),
        )

    def _extra(self, kw):
        return kw.get("ceil_mode", False), kw.get("count_include_pad", True), kw.get("divisor_override")

    def torch_run(self, kw, grads):
        x = _t(np.asarray(kw["x"], dtype=np.float64))
        s = kw["stride"] if kw["stride"] is not None else kw["kernel_size"]
        y = F.avg_pool2d(x, kw["kernel_size"], s, kw["padding"], *self._extra(kw))
        y.backward(torch.tensor(np.asarray(grads[0], dtype=np.float64)))
        return (y.detach().numpy(),), (x.grad.numpy(),)

    def reference(self, kw, grads):
        k, s, p = self._kps(kw)
        e = self._extra(kw)
        return (
            (R.avg_pool2d_ref(kw["x"], k, s, p, *e),),
            (R.avg_pool2d_backward_ref(np.shape(kw["x"]), k, s, p, grads[0], *e),),
        )


ALL_SPECS = [MaxPool2dSpec(), AvgPool2dSpec()]


def specs():
    """The specs of the ops this build of deepkern has."""
    return [s for s in ALL_SPECS if s.available()]


def spec_params(pytest):
    """pytest.param per spec; ops not in deepkern yet are skipped with a reason."""
    return [
        pytest.param(
            s, id=s.name, marks=() if s.available() else pytest.mark.skip(reason=f"dk.{s.name} not in this build")
        )
        for s in ALL_SPECS
    ]


# ----------------------------------------------------------------------------- conv2d


class Conv2dSpec(OpSpec):
    name, backward_name = "conv2d", "conv2d_backward"
    arrays = ("x", "w", "b")
    optional = ("b",)
    params = ("stride", "padding", "dilation")
    grad_names = ("dy",)

    def make(self, rng, dtype, shape=(2, 3, 7, 8), K=4, k=(3, 2), stride=(2, 1), padding=1, dilation=1):
        x = rng.standard_normal(shape).astype(dtype)
        w = rng.standard_normal((K, shape[1]) + tuple(k)).astype(dtype)
        b = rng.standard_normal(K).astype(dtype)
        return dict(x=x, w=w, b=b, stride=stride, padding=padding, dilation=dilation)

    def medium(self):
        return dict(shape=(4, 16, 20, 20), K=16, k=(3, 3), stride=1)

    def grad_shapes(self, outs):
        return [outs[0].shape]

    def empty_calls(self):
        # N = 0 once killed the process (SIGFPE in conv2d_backward): it is checked in a subprocess
        # by test_conv2d_empty_batch_backward_does_not_crash (test_reliability_badinput.py) instead,
        # so a regression fails one test rather than the whole run.
        return []

    def torch_run(self, kw, grads):
        x, w = _t(np.asarray(kw["x"], np.float64)), _t(np.asarray(kw["w"], np.float64))
        b = None if kw["b"] is None else _t(np.asarray(kw["b"], np.float64))
        y = F.conv2d(x, w, b, kw["stride"], kw["padding"], kw["dilation"], kw.get("groups", 1))
        y.backward(torch.tensor(np.asarray(grads[0], np.float64)))
        return (y.detach().numpy(),), (x.grad.numpy(), w.grad.numpy(), None if b is None else b.grad.numpy())

    def draw(self, data, st, rng, dtype):
        N, C, K = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 4)), data.draw(st.integers(1, 5))
        kh, kw_ = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
        s = data.draw(st.tuples(st.integers(1, 3), st.integers(1, 3)))
        p = data.draw(st.tuples(st.integers(0, 2), st.integers(0, 2)))
        d = data.draw(st.tuples(st.integers(1, 2), st.integers(1, 2)))
        H = data.draw(st.integers(max(1, d[0] * (kh - 1) + 1 - 2 * p[0]), 11))
        W = data.draw(st.integers(max(1, d[1] * (kw_ - 1) + 1 - 2 * p[1]), 11))
        # groups: 1, or a divisor of C (C = G: depthwise) with K a multiple of it
        G = data.draw(st.sampled_from([g for g in range(1, C + 1) if C % g == 0]), label="groups")
        K = G * max(1, K // G)
        x = draw_values(data, st, rng, (N, C, H, W), dtype)
        w = draw_values(data, st, rng, (K, C // G, kh, kw_), dtype)
        b = data.draw(st.one_of(st.none(), st.just(1)))
        b = None if b is None else rng.standard_normal(K).astype(dtype)
        return dict(x=x, w=w, b=b, stride=s, padding=p, dilation=d, groups=G)

    def reference(self, kw, grads):
        s, p, d = pair(kw["stride"]), pair(kw["padding"]), pair(kw["dilation"])
        G = kw.get("groups", 1)
        y = R.conv2d_ref(kw["x"], kw["w"], kw["b"], s, p, d, G)
        return (y,), R.conv2d_backward_ref(kw["x"], kw["w"], grads[0], kw["b"] is not None, s, p, d, G)

    def bad_calls(self):
        op = self.name
        out_ok = lambda kw: np.empty((2, 4, 4, 9), np.asarray(kw["x"]).dtype)  # noqa: E731
        return [
            ("x_2d", lambda kw: {**kw, "x": kw["x"][0, 0]}, ValueError, rf"{op}: 'x' must be a 4-D .* or 3-D"),
            ("w_3d", lambda kw: {**kw, "w": kw["w"][0]}, ValueError, rf"{op}: 'w' must be a 4-D"),
            ("x_scalar", lambda kw: {**kw, "x": 2.0}, ValueError, rf"{op}: 'x' must be a 4-D"),
            (
                "channels_mismatch",
                lambda kw: {**kw, "w": kw["w"][:, :2]},
                ValueError,
                rf"{op}: 'w' has 2 input channels",
            ),
            ("b_wrong_len", lambda kw: {**kw, "b": kw["b"][:3]}, ValueError, rf"{op}: 'b' has shape"),
            ("b_2d", lambda kw: {**kw, "b": kw["b"][None]}, ValueError, rf"{op}: 'b' has shape"),
            ("w_zero_K", lambda kw: {**kw, "w": kw["w"][:0], "b": None}, ValueError, rf"{op}: 'w' must have K"),
            ("x_zero_H", lambda kw: {**kw, "x": kw["x"][:, :, :0]}, ValueError, rf"{op}: 'x' must have C, H, W >= 1"),
            (
                "x_zero_C",
                lambda kw: {**kw, "x": kw["x"][:, :0], "w": kw["w"][:, :0]},
                ValueError,
                rf"{op}: 'x' must have C",
            ),
            (
                "kernel_gt_input",
                lambda kw: {**kw, "padding": 0, "dilation": 4},
                ValueError,
                "kernel larger than padded input",
            ),
            ("stride_0", lambda kw: {**kw, "stride": 0}, ValueError, "'stride' must be >= 1"),
            ("stride_neg", lambda kw: {**kw, "stride": (-1, 1)}, ValueError, "'stride' must be >= 1"),
            ("dilation_0", lambda kw: {**kw, "dilation": 0}, ValueError, "'dilation' must be >= 1"),
            ("padding_neg", lambda kw: {**kw, "padding": -1}, ValueError, "'padding' must be >= 0"),
            ("groups_0", lambda kw: {**kw, "groups": 0}, ValueError, "'groups' must be a positive int"),
            ("groups_float", lambda kw: {**kw, "groups": 1.0}, ValueError, "'groups' must be a positive int"),
            ("groups_not_dividing_C", lambda kw: {**kw, "groups": 2}, ValueError, "'groups' is 2"),
            (
                "groups_not_dividing_K",
                lambda kw: {**kw, "x": kw["x"][:, :2], "w": kw["w"][:3, :1], "b": None, "groups": 2},
                ValueError,
                "not divisible by 'groups'",
            ),
            (
                "padding_str",
                lambda kw: {**kw, "padding": "full"},
                ValueError,
                "'padding' must be an int, a pair of ints, 'same' or 'valid'",
            ),
            ("padding_same_strided", lambda kw: {**kw, "padding": "same"}, ValueError, "padding='same' needs stride 1"),
            ("padding_float", lambda kw: {**kw, "padding": 1.0}, TypeError, "'padding' must be an int"),
            ("dilation_2e40", lambda kw: {**kw, "dilation": 2**40}, ValueError, "kernel larger than padded input"),
            ("dilation_2e41", lambda kw: {**kw, "dilation": 2**41}, ValueError, "'dilation' must be <= 2\\*\\*40"),
            # legal but absurd: the output cannot be allocated (numpy's errors; nothing reaches a kernel)
            ("padding_2e20", lambda kw: {**kw, "padding": 2**20}, MemoryError, "Unable to allocate"),
            (
                "padding_2e40",
                lambda kw: {**kw, "padding": 2**40},
                (MemoryError, ValueError),
                "Unable to allocate|array is too big",
            ),
            (
                "out_wrong_shape",
                lambda kw: {**kw, "out": np.empty((2, 4, 4, 8), np.float32)},
                ValueError,
                rf"{op}: 'out' has shape",
            ),
            (
                "out_wrong_dtype",
                lambda kw: {**kw, "out": np.empty((2, 4, 4, 9), np.float64)},
                TypeError,
                rf"{op}: 'out' has dtype",
            ),
            (
                "out_list",
                lambda kw: {**kw, "out": [[0.0]]},
                TypeError,
                rf"{op}: 'out' must be a numpy array \(CPU\) like the inputs, got list",
            ),
            (
                "out_strided",
                lambda kw: {**kw, "out": np.empty((2, 4, 4, 18), np.float32)[..., ::2]},
                ValueError,
                rf"{op}: 'out' must be C-contiguous",
            ),
            ("out_readonly", lambda kw: {**kw, "out": _readonly(out_ok(kw))}, ValueError, rf"{op}: 'out' is read-only"),
        ]


def _readonly(a):
    a.setflags(write=False)
    return a


# ----------------------------------------------------------------------------- LSTM


class _LstmBase(OpSpec):
    optional = ("h", "c", "b_ih", "b_hh")

    def _weights(self, rng, dtype, I, H):
        s = 1.0 / np.sqrt(H)
        return dict(
            w_ih=(rng.standard_normal((4 * H, I)) * s).astype(dtype),
            w_hh=(rng.standard_normal((4 * H, H)) * s).astype(dtype),
            b_ih=(rng.standard_normal(4 * H) * s).astype(dtype),
            b_hh=(rng.standard_normal(4 * H) * s).astype(dtype),
        )

    def _torch_steps(self, x_steps, h, c, kw, hn, cn):
        """torch.lstm_cell over the steps with autograd: (ys, h, c, leaves)."""
        leaves = {}
        for n in ("w_ih", "w_hh", "b_ih", "b_hh", hn, cn):
            leaves[n] = None if kw.get(n) is None else _t(np.asarray(kw[n], np.float64))
        B, H = x_steps[0].shape[0], leaves["w_hh"].shape[1]
        h = leaves[hn] if leaves[hn] is not None else torch.zeros(B, H, dtype=torch.float64)
        c = leaves[cn] if leaves[cn] is not None else torch.zeros(B, H, dtype=torch.float64)
        ys = []
        for xt in x_steps:
            h, c = torch.lstm_cell(xt, (h, c), leaves["w_ih"], leaves["w_hh"], leaves["b_ih"], leaves["b_hh"])
            ys.append(h)
        return ys, h, c, leaves

    @staticmethod
    def _grads(leaves, x, names):
        g = lambda t: None if (t is None or t.grad is None) else t.grad.numpy()  # noqa: E731
        return (x.grad.numpy(), *[g(leaves[n]) for n in names])

    def _draw_common(self, data, st, rng, dtype, x_shape, B, I, hn, cn):
        H = data.draw(st.integers(1, 6))
        # float32: no NaN/inf, since a gate pre-activation beyond ~5e3 (inf included) gives NaN (BUG pinned by
        # test_lstm_float32_large_preactivation_saturates in test_reliability_badinput.py)
        sp = np.dtype(dtype) == np.float64
        kw = dict(x=draw_values(data, st, rng, x_shape, dtype, specials=sp))
        kw.update(self._weights(rng, dtype, I, H))
        for n, shape in ((hn, (B, H)), (cn, (B, H))):
            kw[n] = None if data.draw(st.booleans()) else draw_values(data, st, rng, shape, dtype, specials=sp)
        for n in ("b_ih", "b_hh"):
            if data.draw(st.booleans()):
                kw[n] = None
        return kw

    def _bad_common(self, op, hn, cn):
        return [
            ("w_ih_not_4H", lambda kw: {**kw, "w_ih": kw["w_ih"][:-1]}, ValueError, rf"{op}: 'w_ih' has shape"),
            ("w_ih_wrong_I", lambda kw: {**kw, "w_ih": kw["w_ih"][:, :-1]}, ValueError, rf"{op}: 'w_ih' has shape"),
            ("w_ih_1d", lambda kw: {**kw, "w_ih": kw["w_ih"][0]}, ValueError, rf"{op}: 'w_ih' must be a 2-D"),
            ("w_hh_wrong", lambda kw: {**kw, "w_hh": kw["w_hh"][:, :-1]}, ValueError, rf"{op}: 'w_hh' has shape"),
            ("b_ih_wrong", lambda kw: {**kw, "b_ih": kw["b_ih"][:-1]}, ValueError, rf"{op}: 'b_ih' has shape"),
            ("b_hh_2d", lambda kw: {**kw, "b_hh": kw["b_hh"][None]}, ValueError, rf"{op}: 'b_hh' has shape"),
            (f"{hn}_wrong", lambda kw: {**kw, hn: kw[hn][:, :-1]}, ValueError, rf"{op}: '{hn}' has shape"),
            (f"{cn}_wrong_batch", lambda kw: {**kw, cn: kw[cn][:-1]}, ValueError, rf"{op}: '{cn}' has shape"),
            ("w_ih_empty", lambda kw: {**kw, "w_ih": kw["w_ih"][:0]}, ValueError, rf"{op}: 'w_ih' has shape"),
        ]


class LstmCellSpec(_LstmBase):
    name, backward_name = "lstm_cell", "lstm_cell_backward"
    arrays = ("x", "h", "c", "w_ih", "w_hh", "b_ih", "b_hh")
    grad_names = ("dh1", "dc1")
    optional_grads = ("dh1", "dc1")

    def make(self, rng, dtype, B=3, I=5, H=4):
        kw = dict(
            x=rng.standard_normal((B, I)).astype(dtype),
            h=rng.standard_normal((B, H)).astype(dtype),
            c=rng.standard_normal((B, H)).astype(dtype),
        )
        kw.update(self._weights(rng, dtype, I, H))
        return kw

    def medium(self):
        return dict(B=16, I=64, H=64)

    def torch_run(self, kw, grads):
        x = _t(np.asarray(kw["x"], np.float64))
        _, h, c, leaves = self._torch_steps([x], None, None, kw, "h", "c")
        torch.autograd.backward([h, c], [torch.tensor(np.asarray(g, np.float64)) for g in grads])
        return (h.detach().numpy(), c.detach().numpy()), self._grads(
            leaves, x, ("h", "c", "w_ih", "w_hh", "b_ih", "b_hh")
        )

    def draw(self, data, st, rng, dtype):
        B, I = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 6))
        return self._draw_common(data, st, rng, dtype, (B, I), B, I, "h", "c")

    def reference(self, kw, grads):
        h1, c1, cache = R.lstm_cell_ref(kw["x"], kw["h"], kw["c"], kw["w_ih"], kw["w_hh"], kw["b_ih"], kw["b_hh"])
        return (h1, c1), R.lstm_cell_backward_ref(cache, *grads)

    def bad_calls(self):
        op = self.name
        return [
            ("x_3d", lambda kw: {**kw, "x": kw["x"][None]}, ValueError, rf"{op}: 'x' must be a 2-D"),
            ("x_0d", lambda kw: {**kw, "x": kw["x"][0, 0]}, ValueError, rf"{op}: 'x' must be a 2-D"),
            # x (I,) is unbatched, as torch.nn.LSTMCell takes it; the batched h then does not fit
            ("x_1d", lambda kw: {**kw, "x": kw["x"][0]}, ValueError, rf"{op}: 'h' has shape .*unbatched"),
            (
                "x_zero_batch",
                lambda kw: {**kw, "x": kw["x"][:0], "h": None, "c": None},
                ValueError,
                rf"{op}: 'x' has shape \(0, 5\); every dimension",
            ),
            *self._bad_common(op, "h", "c"),
        ]


class LstmSpec(_LstmBase):
    name, backward_name = "lstm", "lstm_backward"
    arrays = ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh")
    optional = ("h0", "c0", "b_ih", "b_hh")
    grad_names = ("dy", "dhT", "dcT")
    optional_grads = ("dy", "dhT", "dcT")

    def make(self, rng, dtype, T=4, B=3, I=5, H=4):
        kw = dict(
            x=rng.standard_normal((T, B, I)).astype(dtype),
            h0=rng.standard_normal((B, H)).astype(dtype),
            c0=rng.standard_normal((B, H)).astype(dtype),
        )
        kw.update(self._weights(rng, dtype, I, H))
        return kw

    def medium(self):
        return dict(T=6, B=16, I=48, H=64)

    def torch_run(self, kw, grads):
        x = _t(np.asarray(kw["x"], np.float64))
        ys, h, c, leaves = self._torch_steps(list(x), None, None, kw, "h0", "c0")
        y = torch.stack(ys)
        torch.autograd.backward([y, h, c], [torch.tensor(np.asarray(g, np.float64)) for g in grads])
        return (
            (y.detach().numpy(), h.detach().numpy(), c.detach().numpy()),
            self._grads(leaves, x, ("h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh")),
        )

    def draw(self, data, st, rng, dtype):
        T, B, I = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 4)), data.draw(st.integers(1, 6))
        return self._draw_common(data, st, rng, dtype, (T, B, I), B, I, "h0", "c0")

    def reference(self, kw, grads):
        y, hT, cT, cache = R.lstm_ref(kw["x"], kw["h0"], kw["c0"], kw["w_ih"], kw["w_hh"], kw["b_ih"], kw["b_hh"])
        return (y, hT, cT), R.lstm_backward_ref(cache, *grads)

    def bad_calls(self):
        op = self.name
        return [
            ("x_1d", lambda kw: {**kw, "x": kw["x"][0, 0]}, ValueError, rf"{op}: 'x' must be a 3-D"),
            # x (T, I) is unbatched, as torch.nn.LSTM takes it; the batched h0 then does not fit
            ("x_2d", lambda kw: {**kw, "x": kw["x"][:, 0]}, ValueError, rf"{op}: 'h0' has shape .*unbatched"),
            ("x_4d", lambda kw: {**kw, "x": kw["x"][None]}, ValueError, rf"{op}: 'x' must be a 3-D"),
            ("x_zero_T", lambda kw: {**kw, "x": kw["x"][:0]}, ValueError, rf"{op}: 'x' has shape \(0, 3, 5\); every"),
            *self._bad_common(op, "h0", "c0"),
        ]


# ----------------------------------------------------------------------------- attention


class SdpaSpec(OpSpec):
    name, backward_name = "scaled_dot_product_attention", "scaled_dot_product_attention_backward"
    arrays = ("q", "k", "v")
    grad_names = ("dout",)

    def make(self, rng, dtype, batch=(2, 3), Lq=5, Lk=7, D=4, Dv=6):
        return dict(
            q=rng.standard_normal(batch + (Lq, D)).astype(dtype),
            k=rng.standard_normal(batch + (Lk, D)).astype(dtype),
            v=rng.standard_normal(batch + (Lk, Dv)).astype(dtype),
        )

    def medium(self):
        return dict(batch=(2, 4), Lq=64, Lk=80, D=32, Dv=32)

    def empty_calls(self):
        return [
            lambda kw: {k: v[:0] for k, v in kw.items()},  # empty batch
            lambda kw: {**kw, "q": kw["q"][..., :0, :]},  # Lq = 0
            lambda kw: {**kw, "k": kw["k"][..., :0, :], "v": kw["v"][..., :0, :]},
        ]  # Lk = 0: zeros

    def nonfinite_targets(self, value):
        # +-inf in q or k can make every score of a row -inf: deepkern gives that row exact zeros (the
        # API's empty-row rule), PyTorch 0 * v, which is NaN where v holds inf (docs/RELIABILITY.md).
        return self.arrays if np.isnan(value) else ("v",)

    def torch_run(self, kw, grads):
        q, k, v = (_t(np.asarray(kw[n], np.float64)) for n in ("q", "k", "v"))
        m = kw.get("attn_mask")
        out = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=None if m is None else torch.tensor(np.asarray(m)),
            is_causal=kw.get("is_causal", False),
            scale=kw.get("scale"),
        )
        out.backward(torch.tensor(np.asarray(grads[0], np.float64)))
        return (out.detach().numpy(),), (q.grad.numpy(), k.grad.numpy(), v.grad.numpy())

    def draw(self, data, st, rng, dtype):
        nb = data.draw(st.integers(0, 2))
        batch = tuple(data.draw(st.integers(1, 3)) for _ in range(nb))
        Lq, Lk = data.draw(st.integers(1, 9)), data.draw(st.integers(1, 9))
        D, Dv = data.draw(st.integers(1, 8)), data.draw(st.integers(1, 8))
        # broadcasting: k/v may drop or size-1 the leading dims
        kb = tuple(1 if data.draw(st.booleans()) else n for n in batch)
        mask = data.draw(st.sampled_from(["none", "causal", "bool", "float"]))
        # NaN/inf only in v and only without masks or with a finite additive mask: the kernel never reads
        # masked-out keys under is_causal and gives a row whose scores are all -inf exact zeros, where
        # the reference's p @ v computes 0 * inf = NaN (docs/RELIABILITY.md). NaN/inf in q and k are
        # compared with PyTorch in test_reliability_badinput.py.
        sp = mask in ("none", "float")
        kw = dict(
            q=draw_values(data, st, rng, batch + (Lq, D), dtype, specials=False),
            k=draw_values(data, st, rng, kb + (Lk, D), dtype, specials=False),
            v=draw_values(data, st, rng, kb + (Lk, Dv), dtype, specials=sp),
        )
        if mask == "causal":
            kw["is_causal"] = True
        elif mask == "bool":
            kw["attn_mask"] = rng.random((Lq, Lk)) < 0.7  # some rows fully masked: zeros
        elif mask == "float":
            kw["attn_mask"] = rng.standard_normal((1,) * min(nb, 1) + (Lq, Lk)).astype(dtype)
        if data.draw(st.booleans()):
            kw["scale"] = data.draw(st.floats(0.05, 2.0))
        return kw

    def reference(self, kw, grads):
        a = (kw.get("attn_mask"), kw.get("is_causal", False), kw.get("scale"))
        out = R.sdpa_ref(kw["q"], kw["k"], kw["v"], *a)
        return (out,), R.sdpa_backward_ref(kw["q"], kw["k"], kw["v"], grads[0], *a)

    def bad_calls(self):
        op = self.name
        return [
            ("q_1d", lambda kw: {**kw, "q": kw["q"][0, 0, 0]}, ValueError, rf"{op}: 'q' must have at least 2 dims"),
            ("v_scalar", lambda kw: {**kw, "v": 1.0}, ValueError, rf"{op}: 'v' must have at least 2 dims"),
            ("k_wrong_D", lambda kw: {**kw, "k": kw["k"][..., :-1]}, ValueError, rf"{op}: 'k' has embedding size"),
            ("v_wrong_Lk", lambda kw: {**kw, "v": kw["v"][..., :-1, :]}, ValueError, rf"{op}: 'v' has sequence length"),
            (
                "batch_mismatch",
                lambda kw: {**kw, "k": kw["k"][:1, :2], "v": kw["v"][:1, :2]},
                ValueError,
                rf"{op}: the leading \(batch/head\) dims",
            ),
            (
                "D_zero",
                lambda kw: {**kw, "q": kw["q"][..., :0], "k": kw["k"][..., :0]},
                ValueError,
                rf"{op}: 'q' must have an embedding size >= 1",
            ),
            ("scale_nan", lambda kw: {**kw, "scale": float("nan")}, ValueError, rf"{op}: 'scale' must be finite"),
            ("scale_inf", lambda kw: {**kw, "scale": float("inf")}, ValueError, rf"{op}: 'scale' must be finite"),
            ("scale_str", lambda kw: {**kw, "scale": "0.5"}, TypeError, rf"{op}: 'scale' must be a real number"),
            ("scale_complex", lambda kw: {**kw, "scale": 1j}, TypeError, rf"{op}: 'scale' must be a real number"),
            ("causal_str", lambda kw: {**kw, "is_causal": "yes"}, TypeError, rf"{op}: 'is_causal' must be a bool"),
            (
                "mask_and_causal",
                lambda kw: {**kw, "attn_mask": np.ones((5, 7), bool), "is_causal": True},
                ValueError,
                rf"{op}: 'attn_mask' must be None when is_causal",
            ),
            (
                "mask_wrong_shape",
                lambda kw: {**kw, "attn_mask": np.ones((5, 6), bool)},
                ValueError,
                rf"{op}: 'attn_mask' of shape \(5, 6\) does not broadcast",
            ),
            (
                "mask_too_many_dims",
                lambda kw: {**kw, "attn_mask": np.ones((2, 2, 3, 5, 7), bool)},
                ValueError,
                rf"{op}: 'attn_mask' of shape",
            ),
            (
                "mask_complex",
                lambda kw: {**kw, "attn_mask": np.ones((5, 7), complex)},
                TypeError,
                rf"{op}: 'attn_mask' has dtype complex128",
            ),
            (
                "mask_str",
                lambda kw: {**kw, "attn_mask": np.full((5, 7), "a")},
                TypeError,
                rf"{op}: 'attn_mask' has dtype",
            ),
        ]


ALL_SPECS += [Conv2dSpec(), LstmCellSpec(), LstmSpec(), SdpaSpec()]
