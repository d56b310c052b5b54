#!/usr/bin/env python3
"""PyTorch side of actq's benchmark harness (go run ./bench runs it).

Times each op's forward call and its backward kernel (the aten function
autograd would call) on float32 CPU tensors filled like the Go side
(x[i] = 6·sin(0.618·i), dy[i] = cos(i)).

The matmul ops time torch.matmul(a, b) on float32 matrices with values in
[-1, 1] (no subnormals): "matmul" with shape [m, k, n] multiplies an m×k
by a k×n matrix, "matmul_nt" an m×k by the transpose of an n×k one (as
attention's Q·Kᵀ). Torch's matmul runs on the BLAS it was built with
(OpenBLAS here), whose threads torch.set_num_threads does not set: the
thread count is given to OpenBLAS too, through openblas_set_num_threads.

With --serve (how the harness uses it, so that its samples interleave with
the Go ones) it reads one JSON request per line,
{"op", "shape", "threads", "pass": "fwd"|"fwdbwd", "min_seconds"}, and
answers each with {"ns": ns per call} (or {"error": ...}). Otherwise it
times every op itself and prints one JSON object per line:
{"op", "shape", "threads", "pass", "ns"}. Either way the first line
describes the library: {"torch": version, "config": [...]}.

Requests for the ops "model_train:<act>" and "model_eval:<act>" time a
training step or an evaluation pass of a whole model (torch_model.py),
whose "shape" is [vocab, seq, d_model, heads, d_hidden, layers, batch].
Requests for "generate" and "prefill" time a greedy generation of
shape[1] tokens after the request's "prompt" (shape[0] tokens), or the
prompt's forward pass alone, with the Llama checkpoint at the request's
"path" (torch_llama.py); "generate_tokens" answers {"tokens": [...]}, the
tokens one generation produces.

    /usr/bin/python3 bench/torch_bench.py --ops gelu,silu --shape 1048576 --threads 1,2
"""
import argparse
import ctypes
import ctypes.util
import json
import math
import sys
import time

import torch
import torch.nn.functional as F

import torch_llama
import torch_model

aten = torch.ops.aten


def inputs(shape):
    n = math.prod(shape)
    i = torch.arange(n, dtype=torch.float64)
    x = (6 * torch.sin(i * 0.618)).float().reshape(shape)
    dy = torch.cos(i).float().reshape(shape)
    return x.contiguous(), dy.contiguous()


# Each op: forward(x) -> y, and backward(x, y, dy) -> dx, as autograd runs them.
OPS = {
    "relu": (torch.relu, lambda x, y, dy: aten.threshold_backward(dy, y, 0)),
    "gelu": (F.gelu, lambda x, y, dy: aten.gelu_backward(dy, x)),
    "gelu_tanh": (
        lambda x: F.gelu(x, approximate="tanh"),
        lambda x, y, dy: aten.gelu_backward(dy, x, approximate="tanh"),
    ),
    "silu": (F.silu, lambda x, y, dy: aten.silu_backward(dy, x)),
    "softmax": (
        lambda x: torch.softmax(x, -1),
        lambda x, y, dy: aten._softmax_backward_data(dy, y, -1, torch.float32),
    ),
    "fake_quant_int8": (
        lambda x: torch.fake_quantize_per_tensor_affine(x, 0.05, 0, -128, 127),
        # fake_quantize_per_tensor_affine_cachemask_backward: dy ⊙ mask
        lambda x, y, dy: dy * ((x >= -128 * 0.05) & (x <= 127 * 0.05)),
    ),
}


def matmul_inputs(op, shape):
    """The operands of a matmul op: a (m×k) and b (k×n, or n×k for matmul_nt)."""
    m, k, n = shape
    a = torch.sin(torch.arange(m * k, dtype=torch.float64) * 0.618 + 1).float().reshape(m, k)
    if op == "matmul_nt":
        return a, torch.sin(torch.arange(n * k, dtype=torch.float64) * 0.618 + 2).float().reshape(n, k)
    return a, torch.sin(torch.arange(k * n, dtype=torch.float64) * 0.618 + 2).float().reshape(k, n)


MATMULS = {
    "matmul": lambda a, b: torch.matmul(a, b),
    "matmul_nt": lambda a, b: torch.matmul(a, b.t()),
}


def _openblas():
    """The loaded OpenBLAS's openblas_set_num_threads, or None."""
    for name in ("libblas.so.3", ctypes.util.find_library("openblas")):
        if not name:
            continue
        try:
            f = ctypes.CDLL(name).openblas_set_num_threads
        except (OSError, AttributeError):
            continue
        f.argtypes = [ctypes.c_int]
        return f
    return None


OPENBLAS_SET_NUM_THREADS = _openblas()


def set_threads(n):
    """Use n threads in torch's own kernels and in OpenBLAS."""
    torch.set_num_threads(n)
    if OPENBLAS_SET_NUM_THREADS is not None:
        OPENBLAS_SET_NUM_THREADS(n)


def per_call(fn, min_seconds):
    """Seconds per call of fn, timed over at least min_seconds."""
    fn()
    n = 1
    while True:
        t = time.perf_counter()
        for _ in range(n):
            fn()
        d = time.perf_counter() - t
        if d >= min_seconds:
            return d / n
        n = max(n * 2, int(n * min_seconds / max(d, 1e-9) * 1.2))


def serve():
    """Answer timing requests from stdin until it closes."""
    torch.set_grad_enabled(False)
    cache = {}
    for line in sys.stdin:
        try:
            r = json.loads(line)
            set_threads(int(r["threads"]))
            key = (r["op"], tuple(r["shape"]))
            kind, _, act = r["op"].partition(":")
            if kind in ("generate", "prefill", "generate_tokens"):
                # A Llama checkpoint (torch_llama.py): "shape" is [prompt, new tokens].
                key = (kind, r["path"], tuple(r["prompt"]), r["shape"][1])
                if key not in cache:
                    cache.clear()
                    if kind == "prefill":
                        cache[key] = torch_llama.prefill(r["path"], r["prompt"])
                    else:
                        cache[key] = torch_llama.generate(r["path"], r["prompt"], r["shape"][1])
                if kind == "generate_tokens":
                    print(json.dumps({"tokens": cache[key]()}), flush=True)
                    continue
                ns = per_call(cache[key], r["min_seconds"]) * 1e9
                print(json.dumps({"ns": ns}), flush=True)
                continue
            if kind in ("model_train", "model_eval"):
                # A whole model step (torch_model.py): "shape" is the model.
                if key not in cache:
                    cache.clear()
                    make = torch_model.train if kind == "model_train" else torch_model.evaluate
                    cache[key] = make(r["shape"], act or "gelu")
                ns = per_call(cache[key], r["min_seconds"]) * 1e9
                print(json.dumps({"ns": ns}), flush=True)
                continue
            if key not in cache:
                cache.clear()  # keep one op's tensors at a time
                if r["op"] in MATMULS:
                    cache[key] = matmul_inputs(r["op"], r["shape"])
                else:
                    cache[key] = inputs(r["shape"])
            x, dy = cache[key]
            if r["op"] in MATMULS:
                mm = MATMULS[r["op"]]
                ns = per_call(lambda: mm(x, dy), r["min_seconds"]) * 1e9
                print(json.dumps({"ns": ns}), flush=True)
                continue
            fwd, bwd = OPS[r["op"]]
            if r["pass"] == "fwd":
                ns = per_call(lambda: fwd(x), r["min_seconds"]) * 1e9
            else:
                ns = per_call(lambda: bwd(x, fwd(x), dy), r["min_seconds"]) * 1e9
            print(json.dumps({"ns": ns}), flush=True)
        except Exception as e:  # report, keep serving
            print(json.dumps({"error": repr(e)}), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ops", default=",".join(OPS))
    ap.add_argument("--shape", action="append", default=[], help="op=d0xd1..., or d0xd1 for all")
    ap.add_argument("--threads", default="1")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--min-seconds", type=float, default=0.02)
    ap.add_argument("--serve", action="store_true", help="answer JSON timing requests on stdin")
    a = ap.parse_args()
    shapes = {}
    for s in a.shape:
        op, _, dims = s.rpartition("=")
        shapes[op] = [int(d) for d in dims.split("x")]
    print(json.dumps({"torch": torch.__version__, "config": torch.__config__.parallel_info().splitlines()[:3],
                      "openblas_threads": OPENBLAS_SET_NUM_THREADS is not None}), flush=True)
    if a.serve:
        serve()
        return
    torch.set_grad_enabled(False)
    for threads in [int(t) for t in a.threads.split(",")]:
        set_threads(threads)
        for op in a.ops.split(","):
            if op in MATMULS:
                shape = shapes.get(op, [512, 512, 512])
                x, y = matmul_inputs(op, shape)
                mm = MATMULS[op]
                v = sorted(per_call(lambda: mm(x, y), a.min_seconds) for _ in range(a.reps))
                print(json.dumps({"op": op, "shape": shape, "threads": threads, "pass": "fwd",
                                  "ns": v[0] * 1e9}), flush=True)
                continue
            if op not in OPS:
                print(json.dumps({"op": op, "error": "unknown op"}), flush=True)
                continue
            shape = shapes.get(op, shapes.get("", [1 << 20]))
            fwd, bwd = OPS[op]
            x, dy = inputs(shape)
            y = fwd(x)
            samples = {"fwd": [], "fwdbwd": []}
            for _ in range(a.reps):
                samples["fwd"].append(per_call(lambda: fwd(x), a.min_seconds))
                samples["fwdbwd"].append(per_call(lambda: bwd(x, fwd(x), dy), a.min_seconds))
            for p, v in samples.items():
                v.sort()
                print(json.dumps({"op": op, "shape": shape, "threads": threads, "pass": p,
                                  "ns": v[len(v) // 2] * 1e9}), flush=True)


if __name__ == "__main__":
    main()
