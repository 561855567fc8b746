"""One training step of a 2-layer LSTM language model: deepkern vs PyTorch (CPU), same process.

    PYTHONPATH=python python3 benchmarks/bench_lstm_lm.py [--quick] [--json PATH]
    PYTHONPATH=python python3 benchmarks/bench_lstm_lm.py --threads 1 --cpu-time [--repeats 9]   (A/B when loaded)

Model: Embedding(V, E) -> LSTM(E, H, num_layers=2, return_sequences) -> Dense(H, V) -> softmax
cross-entropy over every position; one step = zero_grad, forward, loss, backward, SGD update.
deepkern: dk.nn.Sequential with its LSTM layer on the dk.lstm kernels; PyTorch: the same modules
(nn.Embedding, nn.LSTM(batch_first=True), nn.Linear, F.cross_entropy, optim.SGD) with the
same weights (the deepkern model loads the torch state_dict; the two losses are checked equal
before timing). Both at 2 threads, interleaved (benchmarks/harness.py); speedup = torch / deepkern.

deepkern's Dense layer multiplies with numpy (OpenBLAS, its own thread pool) while the LSTM kernels
use deepkern's OpenMP pool; on a 2-core machine the two pools contend. --blas-threads 1 adds a row
with numpy's BLAS limited to one thread (threadpoolctl) for the deepkern step, to show that cost.

FLOPs counted (matmuls only): forward 2*B*T*4H*(I+H) per LSTM layer plus 2*B*T*H*V for the output
layer; backward twice the forward (input and weight gradients), so one step = 3x forward.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deepkern as dk  # noqa: E402
import harness  # noqa: E402
from harness import Case, run_cases, torch_threads  # noqa: E402

THREADS = 2


def step_flops(B, T, V, E, H, L=2):
    fwd = sum(2 * B * T * 4 * H * ((E if layer == 0 else H) + H) for layer in range(L)) + 2 * B * T * H * V
    return 3.0 * fwd


def make_case(B, T, V, E, H, rng, lr=0.1, blas_threads=None):
    torch = torch_threads(THREADS)
    torch.manual_seed(0)
    temb = torch.nn.Embedding(V, E)
    tlstm = torch.nn.LSTM(E, H, num_layers=2, batch_first=True)
    tlin = torch.nn.Linear(H, V)
    tparams = list(temb.parameters()) + list(tlstm.parameters()) + list(tlin.parameters())
    topt = torch.optim.SGD(tparams, lr=lr)

    model = dk.nn.Sequential(
        [dk.nn.Embedding(V, E), dk.nn.LSTM(E, H, num_layers=2, return_sequences=True), dk.nn.Dense(H, V)]
    )
    state = {f"emb.{k}": v.detach().numpy() for k, v in temb.state_dict().items()}
    state.update({f"lstm.{k}": v.detach().numpy() for k, v in tlstm.state_dict().items()})
    state.update({f"out.{k}": v.detach().numpy() for k, v in tlin.state_dict().items()})
    model.load_torch_state_dict(state, prefixes=["emb", "lstm", "out"])
    opt = dk.optim.SGD(model.parameters(), lr=lr)
    loss = dk.nn.SoftmaxCrossEntropy()

    x = rng.integers(0, V, (B, T))
    y = rng.integers(0, V, (B, T))
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def dk_step():
        return model.train_step(x, y, loss, opt)

    if blas_threads is not None:
        from threadpoolctl import threadpool_limits

        def dk_step():  # noqa: F811 - the same step with numpy's BLAS pool capped
            with threadpool_limits(blas_threads, user_api="blas"):
                return model.train_step(x, y, loss, opt)

    def torch_step():
        topt.zero_grad()
        out, _ = tlstm(temb(tx))
        lv = torch.nn.functional.cross_entropy(tlin(out).reshape(-1, V), ty.reshape(-1))
        lv.backward()
        topt.step()
        return lv.item()

    # same weights, same data: the first step's losses agree (float32)
    l_dk, l_t = dk_step(), torch_step()
    assert abs(l_dk - l_t) <= 1e-4 * abs(l_t), (l_dk, l_t)
    name = "LSTM LM train step" + ("" if blas_threads is None else f" (np BLAS {blas_threads}t)")
    return Case(name, f"B{B} T{T} V{V} E{E} H{H} L2", dk_step, torch_step, flops=step_flops(B, T, V, E, H))


def main():
    global THREADS
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="only the first configuration")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--blas-threads", type=int, default=None, help="also time deepkern with numpy's BLAS capped")
    ap.add_argument("--json", default=os.path.join(os.path.dirname(__file__), "out", "lstm_lm.json"))
    ap.add_argument("--threads", type=int, default=THREADS)
    ap.add_argument(
        "--cpu-time",
        action="store_true",
        help="process CPU time, best of --repeats, interleaved (use with --threads 1)",
    )
    harness.add_args(ap)
    args = ap.parse_args()
    harness.apply_args(args)
    THREADS = args.threads
    dk.set_num_threads(THREADS)
    rng = np.random.default_rng(0)
    configs = [(32, 35, 2000, 256, 256), (20, 20, 1000, 128, 128)]
    if args.quick:
        configs = configs[:1]
    cases = [make_case(*c, rng) for c in configs]
    if args.blas_threads is not None:
        cases += [make_case(*c, rng, blas_threads=args.blas_threads) for c in configs]
    if args.cpu_time:
        from bench_lstm import cpu_time_interleaved

        print(
            f"== LSTM LM train step, {THREADS} thread(s) each, process CPU time (best of {args.repeats}, interleaved)"
        )
        for c in cases:
            t_dk, t_peer = cpu_time_interleaved(c.deepkern, c.peer, repeats=args.repeats)
            print(
                f"{c.op:36s} {c.shape:28s} deepkern {t_dk * 1e3:8.2f} ms  torch {t_peer * 1e3:8.2f} ms  {t_peer / t_dk:5.2f}x"
            )
        return
    run_cases(
        cases,
        json_path=args.json,
        repeats=args.repeats,
        warmup=2,
        title=f"2-layer LSTM language model, one SGD training step (float32, {THREADS} threads each)",
    )


if __name__ == "__main__":
    main()
