"""LSTM and two training steps on a CUDA GPU: deepkern (cupy arrays) vs PyTorch CUDA, same process.

    python benchmarks/bench_lstm.py --device cuda [--json benchmarks/out/lstm_cuda.json] [--repeats 20] [--quick]

Cases (speedup = torch time / deepkern time; CUDA-event medians, benchmarks/gpu_harness.py):
- LSTM float32 T=256 B=64 I=H=512: forward (inference) and forward+backward (forward with a context,
  then every gradient from dy) against torch.nn.LSTM on cuDNN with PyTorch's defaults (TF32 allowed)
  and with TF32 off, and the forward against a Python loop over torch.nn.LSTMCell. Goals: >= 1.0x
  cuDNN both ways, >= 4x the LSTMCell loop (floors: benchmarks/results/cuda_lstm.md).
- the same in float16 (float accumulation) against cuDNN float16;
- each recurrence of deepkern forced in turn (DEEPKERN_LSTM_PERSISTENT, DEEPKERN_CUDA_GRAPHS):
  the persistent cooperative kernel, the per-step launches replayed as a CUDA graph, and the
  per-step launches issued one by one, each against cuDNN (the rows "lstm fwd [persistent]", ...);
- one training step (zero_grad, forward, loss, backward, SGD) of the main job's digits CNN (batch 32)
  and of a 2-layer LSTM language model (B32 T35 V2000 E256 H256) against the same models in PyTorch.
Everything that needs no device (inputs, the twin models, the FLOP counts) is built first; where
cupy, torch CUDA or a device is missing the script says so and exits with status 2.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import deepkern as dk  # noqa: E402

TARGET = (256, 64, 512, 512)  # T, B, I, H


def lstm_params(T, B, I, H):  # noqa: E741
    """The LstmParams dict the CUDA binding reads by field name."""
    return {"T": T, "B": B, "I": I, "H": H}


def lstm_flops(T, B, I, H):
    fwd = 2.0 * T * B * (I + H) * 4 * H
    return fwd, 3 * fwd


def _lstm_inputs(T, B, I, H, dtype, seed=0):
    rng = np.random.default_rng(seed)
    k = 1 / np.sqrt(H)
    x, h0, c0 = (rng.standard_normal(s).astype(dtype) for s in ((T, B, I), (B, H), (B, H)))
    w = [rng.uniform(-k, k, s).astype(dtype) for s in ((4 * H, I), (4 * H, H), (4 * H,), (4 * H,))]
    dy = rng.standard_normal((T, B, H)).astype(dtype)
    return x, h0, c0, w, dy


# deepkern's recurrences, each forced (the plain "lstm fwd" rows run the automatic choice).
PATHS = {
    "persistent": {"DEEPKERN_LSTM_PERSISTENT": "1"},
    "per-step, graph": {"DEEPKERN_LSTM_PERSISTENT": "0", "DEEPKERN_CUDA_GRAPHS": "1"},
    "per-step, no graph": {"DEEPKERN_LSTM_PERSISTENT": "0", "DEEPKERN_CUDA_GRAPHS": "0"},
}


def _with_env(env, fn):
    """fn with the environment variables set for the call (the CUDA module reads them per call)."""

    def run():
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            return fn()
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    return run


def lstm_cases(cp, torch, GpuCase, T, B, I, H, dtype):
    """Forward and forward+backward cases for one shape and dtype, both libraries on the same inputs."""
    x, h0, c0, w, dy = _lstm_inputs(T, B, I, H, dtype)
    d = [cp.asarray(a) for a in (x, h0, c0, *w)]
    dyd = cp.asarray(dy)
    tdt = torch.float16 if dtype == np.float16 else torch.float32
    m = torch.nn.LSTM(I, H).cuda().to(tdt)
    cell = torch.nn.LSTMCell(I, H).cuda().to(tdt)
    with torch.no_grad():
        for p, a in zip((m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0, m.bias_hh_l0), w):
            p.copy_(torch.from_numpy(a))
        for p, a in zip((cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh), w):
            p.copy_(torch.from_numpy(a))
    xt = torch.from_numpy(x).cuda()
    h0t, c0t = torch.from_numpy(h0).cuda()[None], torch.from_numpy(c0).cuda()[None]
    dyt = torch.from_numpy(dy).cuda()

    # the two libraries agree before anything is timed
    y_dk = dk.lstm(*d)[0].get().astype(np.float64)
    with torch.no_grad():
        y_t = m(xt, (h0t, c0t))[0].float().cpu().numpy()
    err = np.linalg.norm(y_dk - y_t) / np.linalg.norm(y_t)
    assert err < (1e-2 if dtype == np.float16 else 1e-3), f"deepkern and torch disagree: relative error {err:.2e}"

    def dk_fwd():
        return dk.lstm(*d)

    def dk_fb():
        _, ctx = dk.lstm(*d, return_ctx=True)
        return dk.lstm_backward(ctx, dyd)

    def torch_fwd():
        with torch.no_grad():
            return m(xt, (h0t, c0t))

    def torch_fb():
        xx = xt.detach().requires_grad_(True)
        hh, cc = h0t.detach().requires_grad_(True), c0t.detach().requires_grad_(True)
        m.zero_grad(set_to_none=True)
        y, _ = m(xx, (hh, cc))
        y.backward(dyt)

    def no_tf32(fn):
        def run():
            old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
            torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
            try:
                return fn()
            finally:
                torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old

        return run

    def cell_loop():
        with torch.no_grad():
            h, c = h0t[0], c0t[0]
            for t in range(T):
                h, c = cell(xt[t], (h, c))
            return h

    fwd, total = lstm_flops(T, B, I, H)
    tag = "f16" if dtype == np.float16 else "f32"
    from deepkern import _backend  # the recurrence the automatic choice takes, and why

    code = _backend._DTYPE_CODES[np.dtype(dtype).name]
    for backward in (False, True):
        plan = _backend._cuda.lstm_path(lstm_params(T, B, I, H), code, backward)
        print(f"  {'backward' if backward else 'forward'} recurrence T{T} B{B} I{I} H{H} {tag}: {plan}")
    shape = f"T{T} B{B} I{I} H{H} {tag}"
    ceiling = "tc_fp16" if dtype == np.float16 else "fp32"
    others_f = {"LSTMCell loop": cell_loop}
    others_fb = {}
    if dtype == np.float32:
        others_f["cudnn no-tf32"] = no_tf32(torch_fwd)
        others_fb["cudnn no-tf32"] = no_tf32(torch_fb)
    variants = []
    for path, env in PATHS.items():
        variants += [
            GpuCase(f"lstm fwd [{path}]", shape, _with_env(env, dk_fwd), torch_fwd, flops=fwd, ceiling=ceiling,
                    peer_name="cudnn"),
            GpuCase(f"lstm fwd+bwd [{path}]", shape, _with_env(env, dk_fb), torch_fb, flops=total,
                    ceiling=ceiling, peer_name="cudnn"),
        ]  # fmt: skip
    return variants + [
        GpuCase(
            "lstm fwd", shape, dk_fwd, torch_fwd, flops=fwd, ceiling=ceiling, peer_name="cudnn", other_peers=others_f
        ),
        GpuCase(
            "lstm fwd+bwd",
            shape,
            dk_fb,
            torch_fb,
            flops=total,
            ceiling=ceiling,
            peer_name="cudnn",
            other_peers=others_fb,
        ),
    ]


def _sgd_step(torch, model, opt, x, y, loss_fn):
    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    return step


def cnn_case(cp, torch, GpuCase, batch=32):
    """One SGD step of the main job's digits CNN (deepkern.demo.digits.build_cnn) and its PyTorch twin."""
    from deepkern.demo.digits import build_cnn

    rng = np.random.default_rng(1)
    x = rng.random((batch, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    model = build_cnn(seed=0)
    tm = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(128, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 10),
    ).cuda()
    model.load_torch_state_dict({k: v.cpu() for k, v in tm.state_dict().items()})  # the same weights in both
    model.to("cuda")
    opt = dk.optim.SGD(model.parameters(), lr=0.05)
    loss = dk.nn.SoftmaxCrossEntropy()
    xd, yd = cp.asarray(x), cp.asarray(y)
    topt = torch.optim.SGD(tm.parameters(), lr=0.05)
    xt, yt = torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()
    return GpuCase(
        "CNN train step (SGD)",
        f"digits CNN B{batch} f32",
        lambda: model.train_step(xd, yd, loss, opt),
        _sgd_step(torch, tm, topt, xt, yt, torch.nn.functional.cross_entropy),
    )


def lm_case(cp, torch, GpuCase, B=32, T=35, V=2000, E=256, H=256):
    """One SGD step of a 2-layer LSTM language model, deepkern vs PyTorch (cuDNN LSTM), same weights."""
    torch.manual_seed(0)
    temb, tlstm, tlin = (
        torch.nn.Embedding(V, E),
        torch.nn.LSTM(E, H, num_layers=2, batch_first=True),
        torch.nn.Linear(H, V),
    )
    model = dk.nn.Sequential(
        [dk.nn.Embedding(V, E), dk.nn.LSTM(E, H, num_layers=2, return_sequences=True), dk.nn.Dense(H, V)]
    )
    state = {f"emb.{k}": v.detach().numpy() for k, v in temb.state_dict().items()}
    state.update({f"lstm.{k}": v.detach().numpy() for k, v in tlstm.state_dict().items()})
    state.update({f"out.{k}": v.detach().numpy() for k, v in tlin.state_dict().items()})
    model.load_torch_state_dict(state, prefixes=["emb", "lstm", "out"])
    model.to("cuda")
    rng = np.random.default_rng(2)
    x, y = rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))
    xd, yd = cp.asarray(x), cp.asarray(y)
    opt, loss = dk.optim.SGD(model.parameters(), lr=0.1), dk.nn.SoftmaxCrossEntropy()
    tm = torch.nn.ModuleList([temb, tlstm, tlin]).cuda()
    topt = torch.optim.SGD(tm.parameters(), lr=0.1)
    xt, yt = torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()

    def torch_step():
        topt.zero_grad(set_to_none=True)
        out, _ = tlstm(temb(xt))
        torch.nn.functional.cross_entropy(tlin(out).reshape(-1, V), yt.reshape(-1)).backward()
        topt.step()

    return GpuCase(
        "LSTM LM train step (SGD)",
        f"B{B} T{T} V{V} E{E} H{H} f32",
        lambda: model.train_step(xd, yd, loss, opt),
        torch_step,
    )


def main(args):
    try:
        from gpu_harness import GpuCase, GpuUnavailable, run_gpu_cases
    except ImportError:
        print("bench_lstm --device cuda: benchmarks/gpu_harness.py is missing", file=sys.stderr)
        return 2
    T, B, I, H = TARGET
    fwd, total = lstm_flops(T, B, I, H)
    print(
        f"LSTM T{T} B{B} I{I} H{H}: forward {fwd / 1e9:.1f} GFLOP, fwd+bwd {total / 1e9:.1f} GFLOP; "
        f"plain-FP32 floors at 51 TFLOP/s: {fwd / 51e12 * 1e3:.2f} ms / {total / 51e12 * 1e3:.2f} ms "
        "(benchmarks/results/cuda_lstm.md)"
    )
    # what needs a device starts here
    try:
        import cupy as cp
        import torch

        if not dk.cuda_available():
            raise GpuUnavailable(
                "deepkern's CUDA module, cupy or a CUDA device is missing (dk.cuda_available() is False)"
            )
        if not torch.cuda.is_available():
            raise GpuUnavailable("torch.cuda.is_available() is False")
    except (ImportError, GpuUnavailable) as e:
        print(
            f"bench_lstm --device cuda: no GPU run here ({e}). Run it on a machine with a CUDA GPU, "
            "cupy and deepkern built with DEEPKERN_CUDA=ON.",
            file=sys.stderr,
        )
        return 2
    cases = lstm_cases(cp, torch, GpuCase, T, B, I, H, np.float32)
    if not args.quick:
        cases += lstm_cases(cp, torch, GpuCase, T, B, I, H, np.float16)
    for make in (cnn_case, lm_case):
        try:
            cases.append(make(cp, torch, GpuCase))
        except NotImplementedError as e:  # an op without a CUDA kernel in this build
            print(f"  skipped {make.__name__}: {e}")
    json_path = args.json or os.path.join(os.path.dirname(os.path.abspath(__file__)), "out", "lstm_cuda.json")
    rows = run_gpu_cases(cases, json_path=json_path, repeats=args.repeats, title="LSTM and training steps, GPU")
    for r in rows:
        extra = ", ".join(f"{k} {v['speedup']:.2f}x" for k, v in r["other_peers"].items())
        if extra:
            print(f"  {r['op']} {r['shape']}: speedup vs {extra}")
    return 0
