"""One description per public functional op, shared by the tests/test_reliability_*.py files.

Each OpSpec knows how to build a small valid call, run the forward (and the backward through
its ctx), and run the same call in PyTorch. The reliability tests (bad input, fuzzing, threads,
determinism) are written once against this interface; adding an op means adding one spec here.
An op whose function is not (yet) in deepkern is skipped, so the table grows as branches land.
"""
import numpy as np
import torch
import torch.nn.functional as F

import deepkern as dk
import reference as R


def pair(v):
    return (v, v) if isinstance(v, (int, np.integer)) else tuple(v)


class OpSpec:
    name = None              # the public forward function
    backward_name = None     # the public backward function
    arrays = ()              # array arguments, in call order
    optional = ()            # array arguments that may be None
    params = ()              # int-or-pair size arguments (kernel_size, stride, ...)
    grad_names = ()          # the backward's upstream-gradient arguments, in order
    optional_grads = ()      # those that may be None
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

    # -- fuzzing (hypothesis): a random valid call and the float64 reference for it
    def draw(self, data, st, rng, dtype):
        """A random valid call (dict of keyword arguments) drawn with hypothesis `data`."""
        raise NotImplementedError

    def reference(self, kw, grads):
        """(forward outputs, input grads) of the float64 reference in tests/reference/."""
        raise NotImplementedError


def draw_values(data, st, rng, shape, dtype):
    """An array of `shape`: normal values, small integers (ties), or with NaN/inf sprinkled in;
    in a random memory layout (C, strided slice, Fortran, negative strides) with the same values."""
    kind = data.draw(st.sampled_from(["normal", "ties", "specials"]), label="values")
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
            ("x_3d", lambda kw: {**kw, "x": kw["x"][0]}, ValueError, rf"{op}: 'x' must be a 4-D"),
            ("x_5d", lambda kw: {**kw, "x": kw["x"][None]}, ValueError, rf"{op}: 'x' must be a 4-D"),
            ("x_scalar", lambda kw: {**kw, "x": 1.0}, ValueError, rf"{op}: 'x' must be a 4-D"),
            ("kernel_0", lambda kw: {**kw, "kernel_size": 0}, ValueError, "'kernel_size' must be >= 1"),
            ("kernel_neg", lambda kw: {**kw, "kernel_size": (3, -2)}, ValueError, "'kernel_size' must be >= 1"),
            ("kernel_float", lambda kw: {**kw, "kernel_size": 2.0}, TypeError, "'kernel_size' must be an int"),
            ("kernel_str", lambda kw: {**kw, "kernel_size": "2"}, TypeError, "'kernel_size' must be an int"),
            ("kernel_bool", lambda kw: {**kw, "kernel_size": True}, TypeError, "'kernel_size' must be an int"),
            ("kernel_triple", lambda kw: {**kw, "kernel_size": (2, 2, 2)}, TypeError, "'kernel_size' must be an int"),
            ("kernel_none", lambda kw: {**kw, "kernel_size": None}, TypeError, "'kernel_size' must be an int"),
            ("kernel_2e40", lambda kw: {**kw, "kernel_size": 2**40, "padding": 0}, ValueError,
             "'kernel_size' .* is larger than the padded input"),
            ("kernel_2e70", lambda kw: {**kw, "kernel_size": 2**70, "padding": 0}, ValueError, "'kernel_size'"),
            ("kernel_gt_input", lambda kw: {**kw, "kernel_size": (8, 2), "padding": 0}, ValueError,
             "'kernel_size' .* is larger than the padded input"),
            ("stride_0", lambda kw: {**kw, "stride": 0}, ValueError, "'stride' must be >= 1"),
            ("stride_neg", lambda kw: {**kw, "stride": (1, -1)}, ValueError, "'stride' must be >= 1"),
            ("stride_float", lambda kw: {**kw, "stride": 1.5}, TypeError, "'stride' must be an int"),
            ("padding_neg", lambda kw: {**kw, "padding": -1}, ValueError, "'padding' must be >= 0"),
            ("padding_gt_half", lambda kw: {**kw, "padding": 2}, ValueError, "'padding' .* must be at most half"),
            ("padding_2e62", lambda kw: {**kw, "padding": 2**62}, ValueError, "'padding' .*must be (at most half|<= 2\\*\\*40)"),
            ("zero_height", lambda kw: {**kw, "x": kw["x"][:, :, :0], "padding": 0}, ValueError,
             "'kernel_size' .* is larger than the padded input"),
        ]


    def draw(self, data, st, rng, dtype):
        kh, kw_ = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
        stride = data.draw(st.one_of(st.none(), st.tuples(st.integers(1, 5), st.integers(1, 5))))
        ph, pw = data.draw(st.integers(0, kh // 2)), data.draw(st.integers(0, kw_ // 2))
        H = data.draw(st.integers(max(1, kh - 2 * ph), 13))
        W = data.draw(st.integers(max(1, kw_ - 2 * pw), 13))
        N, C = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3))
        x = draw_values(data, st, rng, (N, C, H, W), dtype)
        return dict(x=x, kernel_size=(kh, kw_), stride=stride, padding=(ph, pw))

    def _kps(self, kw):
        k = pair(kw["kernel_size"])
        return k, (k if kw["stride"] is None else pair(kw["stride"])), pair(kw["padding"])


class MaxPool2dSpec(_Pool):
    name, backward_name = "max_pool2d", "max_pool2d_backward"

    def call(self, kw, **extra):
        return dk.max_pool2d(**kw, return_indices=True, **extra)

    def grad_shapes(self, outs):
        return [outs[0].shape]  # indices take no gradient

    def torch_run(self, kw, grads):
        x = _t(np.asarray(kw["x"], dtype=np.float64))
        s = kw["stride"] if kw["stride"] is not None else kw["kernel_size"]
        y, idx = F.max_pool2d(x, kw["kernel_size"], s, kw["padding"], return_indices=True)
        y.backward(torch.tensor(np.asarray(grads[0], dtype=np.float64)))
        return (y.detach().numpy(), idx.numpy()), (x.grad.numpy(),)

    def reference(self, kw, grads):
        k, s, p = self._kps(kw)
        y, idx = R.max_pool2d_ref(kw["x"], k, s, p)
        return (y, idx), (R.max_pool2d_backward_ref(np.shape(kw["x"]), idx, grads[0]),)


class AvgPool2dSpec(_Pool):
    name, backward_name = "avg_pool2d", "avg_pool2d_backward"

    def torch_run(self, kw, grads):
        x = _t(np.asarray(kw["x"], dtype=np.float64))
        s = kw["stride"] if kw["stride"] is not None else kw["kernel_size"]
        y = F.avg_pool2d(x, kw["kernel_size"], s, kw["padding"], count_include_pad=True)
        y.backward(torch.tensor(np.asarray(grads[0], dtype=np.float64)))
        return (y.detach().numpy(),), (x.grad.numpy(),)

    def reference(self, kw, grads):
        k, s, p = self._kps(kw)
        return (R.avg_pool2d_ref(kw["x"], k, s, p),), (R.avg_pool2d_backward_ref(np.shape(kw["x"]), k, s, p, grads[0]),)


ALL_SPECS = [MaxPool2dSpec(), AvgPool2dSpec()]


def specs():
    """The specs of the ops this build of deepkern has."""
    return [s for s in ALL_SPECS if s.available()]


def spec_params(pytest):
    """pytest.param per spec; ops not in deepkern yet are skipped with a reason."""
    return [
        pytest.param(s, id=s.name, marks=() if s.available() else pytest.mark.skip(reason=f"dk.{s.name} not in this build"))
        for s in ALL_SPECS
    ]
