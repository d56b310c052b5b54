"""PyTorch's softmax and log-softmax, forward + backward, on the shapes of
ops.BenchmarkSoftmaxTape, for comparison with the Go benchmarks.

Run with Debian's PyTorch as /usr/bin/python3:

    /usr/bin/python3 scripts/bench_softmax_torch.py [threads]

threads (default 2, the Go benchmarks' GOMAXPROCS on the project machine)
goes to torch.set_num_threads. Each figure is the median over 5 runs of
the mean time of 20 steps, after warming up; a step is y = f(x, dim=-1)
and y.backward(dy) on a fresh leaf, as the tape machine does every run.
"""

import statistics
import sys
import time

import torch
import torch.nn.functional as F


def step_fn(f, x, dy):
    def step():
        xr = x.detach().requires_grad_(True)
        f(xr, dim=-1).backward(dy)
    return step


def forward_fn(f, x):
    def step():
        with torch.no_grad():
            f(x, dim=-1)
    return step


def measure(step, iters=20, runs=5):
    for _ in range(3):
        step()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for _ in range(iters):
            step()
        times.append((time.perf_counter() - t0) / iters)
    return statistics.median(times)


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32")
    for rows, cols in [(512, 1024), (64, 65536)]:
        x = torch.randn(rows, cols) * 3
        dy = torch.randn(rows, cols)
        for name, f in [("softmax", F.softmax), ("log_softmax", F.log_softmax)]:
            fb = measure(step_fn(f, x, dy))
            fw = measure(forward_fn(f, x))
            print(f"{rows}x{cols} {name:12s} forward+backward {fb * 1e9:12.0f} ns/op   forward {fw * 1e9:12.0f} ns/op")


if __name__ == "__main__":
    main()
