"""Optimizers, clipping and schedules against torch.optim on the same gradient sequences (float64)."""

import math

import deepkern as dk
import numpy as np
import pytest
from deepkern.nn import Parameter

torch = pytest.importorskip("torch")

SHAPES = [(3, 5), (7,), (2, 3, 4)]
STEPS = 6


def _run_both(dk_cls, torch_cls, kwargs, rng, steps=STEPS, torch_kwargs=None):
    values = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(steps)]
    ps = [Parameter(v.copy()) for v in values]
    ts = [torch.tensor(v.copy(), requires_grad=True) for v in values]
    opt = dk_cls(ps, **kwargs)
    topt = torch_cls(ts, **(torch_kwargs or kwargs))
    for step in range(steps):
        opt.zero_grad()
        topt.zero_grad()
        for p, t, g in zip(ps, ts, grads[step]):
            p.grad = g.copy()
            t.grad = torch.tensor(g)
        opt.step()
        topt.step()
        for p, t in zip(ps, ts):
            np.testing.assert_allclose(
                p.value, t.detach().numpy(), rtol=1e-6, atol=1e-12, err_msg=f"{dk_cls.__name__}{kwargs} step {step}"
            )
    return ps


CASES = [
    (dk.optim.SGD, torch.optim.SGD, dict(lr=0.1)),
    (dk.optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9)),
    (dk.optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
    (dk.optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.8, weight_decay=0.01)),
    (dk.optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.1)),
    (dk.optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    (dk.optim.Adam, torch.optim.Adam, dict()),
    (dk.optim.Adam, torch.optim.Adam, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6)),
    (dk.optim.Adam, torch.optim.Adam, dict(lr=0.01, weight_decay=0.1)),
    (dk.optim.Adam, torch.optim.Adam, dict(lr=0.01, amsgrad=True)),
    (dk.optim.AdamW, torch.optim.AdamW, dict(lr=0.01)),
    (dk.optim.AdamW, torch.optim.AdamW, dict(lr=0.01, weight_decay=0.2, amsgrad=True)),
    (dk.optim.RMSProp, torch.optim.RMSprop, dict()),
    (dk.optim.RMSProp, torch.optim.RMSprop, dict(lr=0.01, alpha=0.9, momentum=0.5)),
    (dk.optim.RMSProp, torch.optim.RMSprop, dict(lr=0.01, centered=True, weight_decay=0.05)),
    (dk.optim.RMSProp, torch.optim.RMSprop, dict(lr=0.003, centered=True, momentum=0.9, eps=1e-4)),
    (dk.optim.Adagrad, torch.optim.Adagrad, dict()),
    (dk.optim.Adagrad, torch.optim.Adagrad, dict(lr=0.1, lr_decay=0.05, weight_decay=0.01)),
    (dk.optim.Adagrad, torch.optim.Adagrad, dict(lr=0.1, initial_accumulator_value=0.5, eps=1e-6)),
    (dk.optim.Adadelta, torch.optim.Adadelta, dict()),
    (dk.optim.Adadelta, torch.optim.Adadelta, dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.1)),
]


@pytest.mark.parametrize("dk_cls,torch_cls,kwargs", CASES, ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)])
def test_optimizer_matches_torch(dk_cls, torch_cls, kwargs, rng):
    _run_both(dk_cls, torch_cls, kwargs, rng)


def test_optimizer_changes_params_and_skips_none_grad(rng):
    a, b = Parameter(rng.standard_normal(4)), Parameter(rng.standard_normal(4))
    b0 = b.value.copy()
    a0 = a.value.copy()
    a.grad = np.ones(4)
    opt = dk.optim.Adam([a, b], lr=0.1)
    opt.step()
    assert np.all(a.value < a0)  # moved against the gradient
    np.testing.assert_array_equal(b.value, b0)  # no grad: untouched, like torch
    opt.zero_grad()
    assert a.grad is None


def test_optimizer_updates_in_place_and_accepts_model(rng):
    model = dk.nn.Sequential([dk.nn.Dense(3, 2, dtype=np.float64)])
    w = model.parameters()[0].value
    opt = dk.optim.SGD(model, lr=1.0)
    for p in model.parameters():
        p.grad = np.ones_like(p.value)
    opt.step()
    assert model.parameters()[0].value is w


def test_float32_params_stay_float32(rng):
    p = Parameter(rng.standard_normal(5).astype(np.float32))
    p.grad = rng.standard_normal(5)  # float64 grad
    for cls in (dk.optim.SGD, dk.optim.Adam, dk.optim.RMSProp, dk.optim.Adagrad, dk.optim.Adadelta):
        cls([p], lr=0.01).step()
        assert p.value.dtype == np.float32


@pytest.mark.parametrize(
    "bad",
    [
        (lambda: dk.optim.SGD([], lr=0.1), ValueError, "params"),
        (lambda: dk.optim.SGD([np.zeros(3)], lr=0.1), TypeError, "params"),
        (lambda: dk.optim.SGD([Parameter(np.zeros(3))], lr=-1.0), ValueError, "lr"),
        (lambda: dk.optim.SGD([Parameter(np.zeros(3))], lr=0.1, nesterov=True), ValueError, "nesterov"),
        (lambda: dk.optim.Adam([Parameter(np.zeros(3))], betas=(1.0, 0.9)), ValueError, "betas"),
        (lambda: dk.optim.clip_grad_norm([Parameter(np.zeros(3))], -1), ValueError, "max_norm"),
        (lambda: dk.optim.StepLR(object(), 3), TypeError, "optimizer"),
        (lambda: dk.optim.EarlyStopping(patience=-1), ValueError, "patience"),
    ],
)
def test_bad_arguments(bad):
    fn, exc, match = bad
    with pytest.raises(exc, match=match):
        fn()


@pytest.mark.parametrize("max_norm,norm_type", [(0.5, 2.0), (100.0, 2.0), (1.0, 1.0), (0.3, float("inf"))])
def test_clip_grad_norm_matches_torch(max_norm, norm_type, rng):
    grads = [rng.standard_normal(s) for s in SHAPES]
    ps = [Parameter(np.zeros(s)) for s in SHAPES]
    ts = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in SHAPES]
    for p, t, g in zip(ps, ts, grads):
        p.grad, t.grad = g.copy(), torch.tensor(g)
    n = dk.optim.clip_grad_norm(ps, max_norm, norm_type)
    tn = torch.nn.utils.clip_grad_norm_(ts, max_norm, norm_type)
    assert math.isclose(n, float(tn), rel_tol=1e-12)
    for p, t in zip(ps, ts):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-12)


def test_clip_grad_value_matches_torch(rng):
    g = rng.standard_normal((4, 6)) * 3
    p = Parameter(np.zeros((4, 6)))
    p.grad = g.copy()
    t = torch.zeros((4, 6), dtype=torch.float64, requires_grad=True)
    t.grad = torch.tensor(g)
    dk.optim.clip_grad_value([p], 0.7)
    torch.nn.utils.clip_grad_value_([t], 0.7)
    np.testing.assert_array_equal(p.grad, t.grad.numpy())
    assert np.abs(p.grad).max() == 0.7


@pytest.mark.parametrize(
    "make",
    [
        (lambda o: dk.optim.StepLR(o, step_size=3, gamma=0.5), lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5)),
        (lambda o: dk.optim.ExponentialLR(o, 0.9), lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.9)),
        (
            lambda o: dk.optim.CosineAnnealingLR(o, 10, eta_min=0.01),
            lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 10, eta_min=0.01),
        ),
    ],
    ids=["StepLR", "ExponentialLR", "CosineAnnealingLR"],
)
def test_schedules_match_torch(make):
    opt = dk.optim.SGD([Parameter(np.zeros(2))], lr=0.2)
    t = torch.zeros(2, requires_grad=True)
    topt = torch.optim.SGD([t], lr=0.2)
    sched, tsched = make[0](opt), make[1](topt)
    for epoch in range(15):
        assert math.isclose(opt.lr, topt.param_groups[0]["lr"], rel_tol=1e-9, abs_tol=1e-12), epoch
        topt.step()
        sched.step()
        tsched.step()


def test_early_stopping_patience_and_min_delta():
    es = dk.optim.EarlyStopping(patience=2, min_delta=0.1, restore_best=False)
    seq = [1.0, 0.8, 0.75, 0.72, 0.5, 0.49, 0.48]  # 0.75 and 0.72 are within min_delta of 0.8
    stops = [es.step(v) for v in seq]
    assert stops == [False, False, False, True, True, True, True]
    assert es.best == 0.8 and es.best_epoch == 1 and es.stopped_epoch == 3
    es.reset()
    assert [es.step(v) for v in [3, 2, 1, 0]] == [False] * 4


def test_early_stopping_restores_best_weights():
    model = dk.nn.Sequential([dk.nn.Dense(2, 2, dtype=np.float64, seed=0)])
    es = dk.optim.EarlyStopping(patience=1, restore_best=True, mode="max")
    es.step(0.9, model)
    best = model.state_dict()
    for p in model.parameters():
        p.value += 1.0
    assert es.step(0.5, model)
    assert es.restore(model)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, best[k])
