"""Finite-difference gradient checks for deepkern.nn layers and models (float64)."""

from helpers import assert_close, numeric_grad

RTOL, ATOL = 1e-6, 1e-8


def check_layer_grads(layer, x, rng, check_dx=True):
    """Compare backward() with central differences of sum(forward(x) * dy): dx and every
    parameter's grad. The layer must be deterministic in training mode."""
    layer.zero_grad()
    y = layer.forward(x, training=True)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    if check_dx:
        num = numeric_grad(lambda a: layer.forward(a, training=True), x, dy)
        assert_close(dx, num, rtol=RTOL, atol=ATOL, what=f"{layer!r} dx")
    for name, p in layer.named_parameters():
        orig = p.value

        def f(w, p=p):
            p.value = w
            return layer.forward(x, training=True)

        num = numeric_grad(f, orig, dy)
        p.value = orig
        assert p.grad is not None, f"{layer!r}: no grad for {name}"
        assert_close(p.grad, num, rtol=RTOL, atol=ATOL, what=f"{layer!r} d{name}")
    return dx
