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


def _t(a):
    return torch.tensor(np.asarray(a), requires_grad=True)


class _Pool(OpSpec):
    arrays = ("x",)
    params = ("kernel_size", "stride", "padding")
    grad_names = ("dy",)

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
            ("padding_2e62", lambda kw: {**kw, "padding": 2**62}, ValueError, "'padding' .* must be at most half"),
            ("zero_height", lambda kw: {**kw, "x": kw["x"][:, :, :0], "padding": 0}, ValueError,
             "'kernel_size' .* is larger than the padded input"),
        ]


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


class AvgPool2dSpec(_Pool):
    name, backward_name = "avg_pool2d", "avg_pool2d_backward"

    def torch_run(self, kw, grads):
        x = _t(np.asarray(kw["x"], dtype=np.float64))
        s = kw["stride"] if kw["stride"] is not None else kw["kernel_size"]
        y = F.avg_pool2d(x, kw["kernel_size"], s, kw["padding"], count_include_pad=True)
        y.backward(torch.tensor(np.asarray(grads[0], dtype=np.float64)))
        return (y.detach().numpy(),), (x.grad.numpy(),)


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
