"""The GPU cases of bench_attention.py (--device cuda): deepkern vs PyTorch's SDPA backends.

float16, B=4 H=16 N=4096, D=64 and 128, causal and not, forward and forward+backward, against
FLASH_ATTENTION (the peer: speedup = torch / deepkern) with CUDNN_ATTENTION as a second peer;
float32 D=64 against EFFICIENT_ATTENTION. Inputs are shared (cupy arrays seen by torch through
DLPack). FLOPs: 4*B*H*pairs*D forward, 3.5x that forward+backward (pairs = N(N+1)/2 causal).
Timing: benchmarks/gpu_harness.py (CUDA events, interleaved, median).
"""

import sys

import deepkern as dk
import numpy as np

B, H, N = 4, 16, 4096


def _need_device():
    """cupy, torch with CUDA and a device, and the harness; SystemExit with the reason otherwise."""
    try:
        from gpu_harness import GpuCase, run_gpu_cases  # noqa: F401
    except ImportError:
        sys.exit("bench_attention --device cuda: benchmarks/gpu_harness.py is missing in this checkout; nothing timed")
    try:
        import cupy as cp
        import torch
    except ImportError as e:
        sys.exit(f"bench_attention --device cuda: needs cupy and torch ({e}); nothing timed")
    if not torch.cuda.is_available() or cp.cuda.runtime.getDeviceCount() < 1 or not dk.cuda_available():
        sys.exit(
            "bench_attention --device cuda: no CUDA device (or deepkern was built without its CUDA module); "
            "nothing timed"
        )
    return cp, torch


def _pairs(causal):
    return N * (N + 1) // 2 if causal else N * N


def _backend_works(torch, backend, fn):
    from torch.nn.attention import sdpa_kernel

    try:
        with sdpa_kernel(backend):
            fn()
        torch.cuda.synchronize()
        return True
    except RuntimeError as e:
        print(f"  ({backend.name} unavailable here: {str(e).splitlines()[0]})")
        return False


def _case(cp, torch, D, causal, dtype, backward, peer, others, rng):
    from gpu_harness import GpuCase
    from torch.nn.attention import SDPBackend, sdpa_kernel

    F = torch.nn.functional
    q, k, v, do = (cp.asarray(rng.standard_normal((B, H, N, D)).astype(dtype)) for _ in range(4))
    tq, tk, tv, tdo = (torch.from_dlpack(a) for a in (q, k, v, do))
    tqg, tkg, tvg = (t.detach().clone().requires_grad_(True) for t in (tq, tk, tv))

    if backward:

        def ours():
            _, ctx = dk.scaled_dot_product_attention(q, k, v, is_causal=causal, return_ctx=True)
            return dk.scaled_dot_product_attention_backward(ctx, do)

        def run_torch():
            out = F.scaled_dot_product_attention(tqg, tkg, tvg, is_causal=causal)
            return torch.autograd.grad(out, (tqg, tkg, tvg), tdo)
    else:

        def ours():
            return dk.scaled_dot_product_attention(q, k, v, is_causal=causal)

        def run_torch():
            return F.scaled_dot_product_attention(tq, tk, tv, is_causal=causal)

    def under(backend):
        def fn():
            with sdpa_kernel(backend):
                return run_torch()

        return fn

    peer_backend = getattr(SDPBackend, peer)
    flops = 4.0 * B * H * _pairs(causal) * D * (3.5 if backward else 1.0)
    name = np.dtype(dtype).name
    return GpuCase(
        f"sdpa {name} {'fwd+bwd' if backward else 'fwd'}",
        f"B{B} H{H} N{N} D{D}{' causal' if causal else ''}",
        ours,
        under(peer_backend) if _backend_works(torch, peer_backend, run_torch) else None,
        flops=flops,
        ceiling="tc_fp16" if dtype == np.float16 else "fp32",
        peer_name=peer.lower(),
        other_peers={
            o.lower(): under(getattr(SDPBackend, o))
            for o in others
            if _backend_works(torch, getattr(SDPBackend, o), run_torch)
        },
    )


def run(json_path=None, repeats=20):
    cp, torch = _need_device()
    from gpu_harness import run_gpu_cases

    rng = np.random.default_rng(0)
    cases = []
    for D in (64, 128):
        for causal in (False, True):
            for backward in (False, True):
                cases.append(
                    _case(cp, torch, D, causal, np.float16, backward, "FLASH_ATTENTION", ["CUDNN_ATTENTION"], rng)
                )
    for backward in (False, True):
        cases.append(_case(cp, torch, 64, False, np.float32, backward, "EFFICIENT_ATTENTION", [], rng))
    return run_gpu_cases(cases, json_path=json_path, repeats=repeats, warmup=3, title="SDPA on the GPU")
