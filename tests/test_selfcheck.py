"""`python -m deepkern --selfcheck` checks every op family on every backend present and says so
in a table; it fails when a kernel is wrong; `--help` lists every mode."""

import subprocess
import sys

import deepkern._selfcheck as selfcheck
import numpy as np
from deepkern import functional as F


def test_selfcheck_passes_and_lists_every_family_and_isa():
    lines = []
    assert selfcheck.run(print_fn=lines.append)
    table = "\n".join(lines)
    for family in ("conv2d", "max_pool2d", "avg_pool2d", "lstm_cell", "lstm", "scaled_dot_product_attention"):
        assert family in table
    for isa in selfcheck._cpu_isas():
        assert f"cpu:{isa}" in table
    assert "FAILED" not in table


def test_selfcheck_catches_a_wrong_forward(monkeypatch):
    real = F.avg_pool2d
    monkeypatch.setattr(F, "avg_pool2d", lambda *a, **k: _scaled(real(*a, **k), 1.001))
    results = selfcheck.check_backend("cpu")
    assert results["avg_pool2d"][0] is False
    assert results["max_pool2d"][0] is True


def test_selfcheck_catches_a_wrong_backward(monkeypatch):
    real = F.max_pool2d_backward
    monkeypatch.setattr(F, "max_pool2d_backward", lambda ctx, dy: tuple(g * 0.999 for g in real(ctx, dy)))
    assert selfcheck.check_backend("cpu")["max_pool2d"][0] is False


def _scaled(out, s):
    if isinstance(out, tuple):
        return (out[0] * s,) + out[1:]
    return out * s


def test_help_lists_every_mode():
    out = subprocess.run(
        [sys.executable, "-m", "deepkern", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for flag in ("--selfcheck", "--device", "--quick", "--epochs", "--episodes", "--threads", "--no-progress"):
        assert flag in out, flag
    assert np.all([m in out for m in ("cpu", "cuda")])
