"""The GPU half of bench_conv.py (`--device cuda`): conv 3x3 pad 1, N=32 C=K=128 56x56, deepkern vs
PyTorch + cuDNN on the same cupy/torch device buffers, timed with CUDA events (gpu_harness.py).

  float32 forward and forward+backward   vs cuDNN float32 (torch.backends.cudnn.allow_tf32 = False)
  TF32 forward and forward+backward      vs cuDNN TF32 (dk.set_allow_tf32(True) / cudnn.allow_tf32 = True)
  float16 forward (NCHW at deepkern's API) vs cuDNN float16 channels-last (and NCHW, as another peer)
  grouped 3x3 (N=32 C=K=256 28x28, groups 32: ResNeXt's) float32 fwd, fwd+bwd, float16 fwd
  depthwise 3x3 (N=32 C=K=256 56x56, groups = C: MobileNet's) float32 fwd, fwd+bwd, float16 fwd
Floors and targets: benchmarks/results/cuda_conv.md. speedup = torch time / deepkern time.
"""

import sys

import numpy as np


def run(args):
    import deepkern as dk
    from gpu_harness import GpuCase, GpuUnavailable, run_gpu_cases

    N, C, K, H, W = 32, 128, 128, 56, 56
    rng = np.random.default_rng(0)
    x32 = rng.standard_normal((N, C, H, W)).astype(np.float32)  # host inputs first: no device needed yet
    w32 = (rng.standard_normal((K, C, 3, 3)) / np.sqrt(C * 9)).astype(np.float32)
    b32 = rng.standard_normal(K).astype(np.float32)
    dy32 = rng.standard_normal((N, K, H, W)).astype(np.float32)
    flops = 2.0 * N * K * C * 9 * H * W
    shape = f"{N}x{C}x{H}x{W} k{K} 3x3 p1"
    try:
        import cupy as cp
        import torch

        if not (dk.cuda_available() and torch.cuda.is_available()):
            raise GpuUnavailable("needs deepkern._cuda with cupy and a CUDA device, and torch with CUDA")
    except (ImportError, GpuUnavailable) as e:
        print(f"bench_conv --device cuda: no GPU here ({e}); inputs were built, nothing was timed.", file=sys.stderr)
        return 2
    F = torch.nn.functional
    cudnn = torch.backends.cudnn

    def dev(a, dtype):
        return cp.asarray(a.astype(dtype))

    def t_of(a, channels_last=False):
        t = torch.as_tensor(a, device="cuda")
        return t.contiguous(memory_format=torch.channels_last) if channels_last else t

    cases = []
    for label, tf32, dtype in (("float32", False, np.float32), ("tf32", True, np.float32)):
        x, w, b, dy = (dev(a, dtype) for a in (x32, w32, b32, dy32))
        tx, tw, tb, tdy = (t_of(a) for a in (x, w, b, dy))
        txg, twg, tbg = (t.clone().requires_grad_(True) for t in (tx, tw, tb))

        def dk_fwd(x=x, w=w, b=b, tf32=tf32):
            dk.set_allow_tf32(tf32)
            return dk.conv2d(x, w, b, 1, 1)

        def dk_fb(x=x, w=w, b=b, dy=dy, tf32=tf32):
            dk.set_allow_tf32(tf32)
            _, ctx = dk.conv2d(x, w, b, 1, 1, return_ctx=True)
            return dk.conv2d_backward(ctx, dy)

        def th_fwd(tx=tx, tw=tw, tb=tb, tf32=tf32):
            cudnn.allow_tf32 = tf32
            with torch.no_grad():
                return F.conv2d(tx, tw, tb, 1, 1)

        def th_fb(txg=txg, twg=twg, tbg=tbg, tdy=tdy, tf32=tf32):
            cudnn.allow_tf32 = tf32
            txg.grad = twg.grad = tbg.grad = None
            F.conv2d(txg, twg, tbg, 1, 1).backward(tdy)

        ceiling = "tc_tf32" if tf32 else "fp32"
        err = _rel_err(cp, dk_fwd(), th_fwd())
        cases += [
            GpuCase(
                f"conv2d {label} fwd",
                shape,
                dk_fwd,
                th_fwd,
                flops=flops,
                ceiling=ceiling,
                peer_name="torch+cudnn",
                extra={"rel_err_vs_torch": err},
            ),
            GpuCase(
                f"conv2d {label} fwd+bwd",
                shape,
                dk_fb,
                th_fb,
                flops=3 * flops,
                ceiling=ceiling,
                peer_name="torch+cudnn",
            ),
        ]

    x16, w16, b16 = (dev(a, np.float16) for a in (x32, w32, b32))
    tx16, tw16, tb16 = (t_of(a, cl) for a, cl in ((x16, True), (w16, True), (b16, False)))
    tx16n, tw16n = t_of(x16), t_of(w16)

    def dk16():
        return dk.conv2d(x16, w16, b16, 1, 1)

    def th16_cl():
        with torch.no_grad():
            return F.conv2d(tx16, tw16, tb16, 1, 1)

    def th16_nchw():
        with torch.no_grad():
            return F.conv2d(tx16n, tw16n, tb16, 1, 1)

    err16 = _rel_err(cp, dk16(), th16_cl())
    cases.append(
        GpuCase(
            "conv2d float16 fwd (NCHW)",
            shape,
            dk16,
            th16_cl,
            flops=flops,
            ceiling="tc_fp16",
            peer_name="torch+cudnn channels-last",
            other_peers={"torch+cudnn NCHW": th16_nchw},
            extra={"rel_err_vs_torch": err16},
        )
    )
    cases += _grouped_cases(dk, cp, torch, rng, "grouped", 32, 256, 256, 28, 28, 32)
    cases += _grouped_cases(dk, cp, torch, rng, "depthwise", 32, 256, 256, 56, 56, 256)
    dk.set_allow_tf32(False)
    for c in cases:
        if "rel_err_vs_torch" in c.extra:
            print(f"  check: {c.op}: relative norm difference to torch {c.extra['rel_err_vs_torch']:.2e}")
    run_gpu_cases(cases, json_path=args.json, repeats=args.repeats, title="conv2d 3x3 on the GPU")
    dk.set_allow_tf32(False)
    cudnn.allow_tf32 = True
    return 0


def _grouped_cases(dk, cp, torch, rng, label, N, C, K, H, W, G):
    """float32 forward, forward+backward and float16 forward of a 3x3 pad 1 conv with G groups, exact
    float32 on both sides (cuDNN TF32 off). The depthwise ones are memory-bound: bytes reported too."""
    from gpu_harness import GpuCase

    F, cudnn = torch.nn.functional, torch.backends.cudnn
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = (rng.standard_normal((K, C // G, 3, 3)) / np.sqrt(C // G * 9)).astype(np.float32)
    b = rng.standard_normal(K).astype(np.float32)
    dy = rng.standard_normal((N, K, H, W)).astype(np.float32)
    flops = 2.0 * N * K * (C // G) * 9 * H * W
    shape = f"{N}x{C}x{H}x{W} k{K} 3x3 p1 g{G}"
    cases = []
    for dtype, name in ((np.float32, "float32"), (np.float16, "float16")):
        xd, wd, bd, dyd = (cp.asarray(a.astype(dtype)) for a in (x, w, b, dy))
        tx, tw, tb, tdy = (torch.as_tensor(a, device="cuda") for a in (xd, wd, bd, dyd))
        txg, twg, tbg = (t.clone().requires_grad_(True) for t in (tx, tw, tb))
        nbytes = (x.size + dy.size) * np.dtype(dtype).itemsize  # x read, y written

        def dk_fwd(xd=xd, wd=wd, bd=bd):
            dk.set_allow_tf32(False)
            return dk.conv2d(xd, wd, bd, 1, 1, 1, G)

        def dk_fb(xd=xd, wd=wd, bd=bd, dyd=dyd):
            dk.set_allow_tf32(False)
            _, ctx = dk.conv2d(xd, wd, bd, 1, 1, 1, G, return_ctx=True)
            return dk.conv2d_backward(ctx, dyd)

        def th_fwd(tx=tx, tw=tw, tb=tb):
            cudnn.allow_tf32 = False
            with torch.no_grad():
                return F.conv2d(tx, tw, tb, 1, 1, 1, G)

        def th_fb(txg=txg, twg=twg, tbg=tbg, tdy=tdy):
            cudnn.allow_tf32 = False
            txg.grad = twg.grad = tbg.grad = None
            F.conv2d(txg, twg, tbg, 1, 1, 1, G).backward(tdy)

        ceiling = "copy" if G == C else ("fp32" if dtype == np.float32 else "tc_fp16")
        err = _rel_err(cp, dk_fwd(), th_fwd())
        cases.append(
            GpuCase(
                f"conv2d {label} {name} fwd",
                shape,
                dk_fwd,
                th_fwd,
                bytes=nbytes,
                flops=flops,
                ceiling=ceiling,
                peer_name="torch+cudnn",
                extra={"rel_err_vs_torch": err},
            )
        )
        if dtype == np.float32:
            cases.append(
                GpuCase(
                    f"conv2d {label} {name} fwd+bwd",
                    shape,
                    dk_fb,
                    th_fb,
                    bytes=3 * nbytes,
                    flops=3 * flops,
                    ceiling=ceiling,
                    peer_name="torch+cudnn",
                )
            )
    return cases


def _rel_err(cp, a, t):
    a = cp.asnumpy(a).astype(np.float64)
    b = t.float().cpu().numpy().astype(np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))
