"""How fast, and how safely, the busy-machine detector could decide: traces of the calling thread's
run-queue wait, replayed against detection rules offline.

    python benchmarks/contention_trace.py record quiet|busy OUT.json [--seconds 3]
    python benchmarks/contention_trace.py replay QUIET.json BUSY.json

`record` runs the LeNet training step (as bench_busy.py) with full teams (the detector disarmed:
DEEPKERN_CONTENTION=off) and after every layer's forward and backward notes the wall clock and the thread's wait
(/proc/thread-self/schedstat, second field), quiet or with one other process spinning on a core.
`replay` cuts each trace into windows of 2.5/5/10 ms and applies rules "share above S in K windows
in a row": for each rule, how often per second it would fire on the quiet trace (each false start
costs a hold on one thread), and on the busy trace how long after a start it fires (median and 90th
percentile over every window as a start: the detection latency a short job pays at full teams). csrc/cpu/common/contention.cpp's constants are chosen from this table.
"""

import json
import multiprocessing
import os
import sys
import time


def spin(stop):
    while not stop.is_set():
        pass


def waited_ns(fd):
    return int(os.pread(fd, 96, 0).split()[1])


def runnable(fd):
    """Tasks runnable on the whole machine at this instant (/proc/loadavg's fourth field, before the /)."""
    return int(os.pread(fd, 128, 0).split()[3].split(b"/")[0])


def record(cond, out, seconds):
    os.environ["DEEPKERN_CONTENTION"] = "off"
    import deepkern as dk
    import numpy as np

    stop = multiprocessing.Event()
    neighbour = None
    if cond == "busy":
        neighbour = multiprocessing.Process(target=spin, args=(stop,), daemon=True)
        neighbour.start()
        time.sleep(0.2)
    import torch
    from bench_training import build

    _, m = build(torch)  # LeNet, as bench_training.py, bench_busy.py and contention_shares.py time it
    nn = dk.nn
    rng = np.random.default_rng(0)
    x = rng.random((64, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 64)
    opt = dk.optim.SGD(m, lr=0.01, momentum=0.9)
    loss = nn.SoftmaxCrossEntropy()
    fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
    fl = os.open("/proc/loadavg", os.O_RDONLY)
    trace = []

    def noting(fn):  # after every layer's forward and backward: about as often as the detector reads
        def call(*a, **kw):
            r = fn(*a, **kw)
            trace.append((time.perf_counter_ns(), waited_ns(fd), runnable(fl)))
            return r

        return call

    for layer in m.layers:
        layer.forward, layer.backward = noting(layer.forward), noting(layer.backward)
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        m.train_step(x, y, loss, opt)
    os.close(fd)
    os.close(fl)
    if neighbour is not None:
        stop.set()
        neighbour.join()
    with open(out, "w") as f:
        json.dump({"cond": cond, "trace": trace}, f)
    print(f"{cond}: {len(trace)} readings in {seconds} s")


def windows(trace, window_ns, signal="wait"):
    """Per window (cut at the first reading that ends one, as the detector reads): its end time and
    its signal: the share of the window spent waiting ("wait"), or the share of readings that found
    more runnable tasks than cores ("runnable")."""
    ncpu = os.cpu_count()
    out, t0, w0, seen, over = [], trace[0][0], trace[0][1], 0, 0
    for t, w, r in (tuple(x) for x in trace[1:]):
        seen, over = seen + 1, over + (r > ncpu)
        if t - t0 >= window_ns:
            out.append((t, (w - w0) / (t - t0) if signal == "wait" else over / seen))
            t0, w0, seen, over = t, w, 0, 0
    return out


def latencies_ms(shares, share, strikes):
    """Starting the count at every window of a busy trace (full teams throughout, so every window is
    a possible job start): milliseconds until the rule fires, for each start (None: never fires)."""
    out = []
    for j in range(len(shares) - 1):
        run, t_start = 0, shares[j][0]
        fired = None
        for t, s in shares[j + 1 :]:
            run = run + 1 if s > share else 0
            if run >= strikes:
                fired = (t - t_start) / 1e6
                break
        out.append(fired)
    return out


def false_starts(shares, share, strikes):
    """Windows at which the rule fires on a quiet trace, restarting the count after each."""
    run, fired = 0, 0
    for _, s in shares:
        run = run + 1 if s > share else 0
        if run >= strikes:
            fired, run = fired + 1, 0
    return fired


def replay(quiet_path, busy_path):
    quiet = json.load(open(quiet_path))["trace"]
    busy = json.load(open(busy_path))["trace"]
    quiet_s = (quiet[-1][0] - quiet[0][0]) / 1e9
    for signal in ("wait", "runnable"):
        print(f"\nsignal: {signal}")
        print("| window | above | in a row | quiet: false starts per second | busy: ms to fire, median / p90 |")
        print("|---|---|---|---|---|")
        for window_ms in (2.5, 5.0, 10.0):
            wq, wb = windows(quiet, window_ms * 1e6, signal), windows(busy, window_ms * 1e6, signal)
            for share in (0.1, 0.2, 0.3, 0.5):
                for strikes in (1, 2, 3):
                    lat = latencies_ms(wb, share, strikes)
                    fired = sorted(x for x in lat if x is not None)
                    if len(fired) < len(lat) * 0.9:
                        latency = f"fires from {len(fired)}/{len(lat)} starts"
                    else:
                        latency = f"{fired[len(fired) // 2]:.0f} / {fired[int(len(fired) * 0.9) - 1]:.0f}"
                    rate = false_starts(wq, share, strikes) / quiet_s
                    print(f"| {window_ms} ms | {share} | {strikes} | {rate:.2f} | {latency} |")


if __name__ == "__main__":
    if sys.argv[1] == "record":
        secs = float(sys.argv[sys.argv.index("--seconds") + 1]) if "--seconds" in sys.argv else 3.0
        record(sys.argv[2], sys.argv[3], secs)
    else:
        replay(sys.argv[2], sys.argv[3])
