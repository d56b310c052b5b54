"""Goldens for package quantize (FakeQuant, FakeQuantLearnable, observers).

PyTorch 1.13 has no float8 dtypes, so fp8 is checked in Go against the OCP
spec instead (exhaustively over the 256 codes). Cases:

- fq_tensor: torch.fake_quantize_per_tensor_affine, forward y and backward
  dx = dy * mask, for every integer range (int8, int8 narrow, uint8, int4,
  int4 narrow, uint4), with random and tie inputs and edge values. Float32
  with arbitrary scales; float64 with power-of-two scales (PyTorch rounds a
  float64 tensor's scale and its reciprocal to float32; with 2^k both agree).
- fq_channel: torch.fake_quantize_per_channel_affine on 2-D to 4-D tensors
  along each axis.
- cast: x.half().float() and x.bfloat16().float() (and .double() for
  float64) over random values of many magnitudes and edge values.
- lsq_tensor / lsq_channel: torch._fake_quantize_learnable_per_tensor_affine
  and _per_channel_affine: y, dx, dscale (summed per channel).
- observer: qparams of torch.ao MinMaxObserver, MovingAverageMinMaxObserver
  and PerChannelMinMaxObserver.
Writes testdata/quantize.json.
"""

import math

import torch
from torch.ao.quantization.observer import (
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    PerChannelMinMaxObserver,
)

from common import case, generator_name, write

# name → (format, narrow, qmin, qmax)
RANGES = {
    "int8": ("Int8", False, -128, 127),
    "int8n": ("Int8", True, -127, 127),
    "uint8": ("UInt8", False, 0, 255),
    "int4": ("Int4", False, -8, 7),
    "int4n": ("Int4", True, -7, 7),
    "uint4": ("UInt4", False, 0, 15),
}

EDGE = [0.0, -0.0, float("nan"), float("inf"), float("-inf"), 1e-30, -1e-30]


def f32(v):
    return float(torch.tensor(v, dtype=torch.float32))


def fq_inputs(n, scale, zp, qmin, qmax, dt):
    """Random values over the range and a bit beyond, exact ties and edges."""
    lo, hi = (qmin - zp) * scale, (qmax - zp) * scale
    width = hi - lo
    r = torch.rand(n, dtype=torch.float64) * width * 1.3 + lo - 0.15 * width
    k = torch.randint(qmin - zp - 2, qmax - zp + 2, (n // 2,), dtype=torch.float64)
    ties = (k + 0.5) * scale  # exact ties in float64, near-ties in float32
    x = torch.cat([r, ties, torch.tensor(EDGE + [lo, hi, lo - scale, hi + scale], dtype=torch.float64)])
    return x.to(dt)


def grad_of(fn, x, dy):
    x = x.clone().requires_grad_(True)
    y = fn(x)
    (dx,) = torch.autograd.grad(y, x, dy)
    return y, dx


def fq_tensor_cases():
    cases = []
    for name, (fmt, narrow, qmin, qmax) in RANGES.items():
        for dname, dt in (("float32", torch.float32), ("float64", torch.float64)):
            zps = [0, (qmin + qmax + 1) // 2, qmin + 1] if qmin < 0 else [0, (qmin + qmax + 1) // 2, qmax - 1]
            for zp in sorted(set(zps)):
                for trial in range(2):
                    if dt == torch.float32:
                        scale = f32(10 ** float(torch.empty(1).uniform_(-3, 0)))
                    else:
                        scale = 2.0 ** int(torch.randint(-8, 0, (1,)))
                    x = fq_inputs(200, scale, zp, qmin, qmax, dt)
                    dy = torch.randn(x.shape, dtype=dt)
                    y, dx = grad_of(lambda t: torch.fake_quantize_per_tensor_affine(t, scale, zp, qmin, qmax), x, dy)
                    params = {"format": fmt, "narrow": narrow, "qmin": qmin, "qmax": qmax,
                              "scale": [scale], "zero_point": [zp]}
                    cases.append(case(f"fq_tensor/{name}/{dname}/zp{zp}/{trial}", "fq_tensor", dname, x.shape,
                                      {"x": x, "dy": dy, "y": y, "dx": dx}, params))
    return cases


def fq_channel_cases():
    cases = []
    shapes = [((4, 6), 0), ((4, 6), 1), ((2, 3, 5), 1), ((3, 4, 8), 2), ((2, 3, 2, 4), 0), ((2, 3, 2, 4), 3)]
    for name, (fmt, narrow, qmin, qmax) in RANGES.items():
        for dname, dt in (("float32", torch.float32), ("float64", torch.float64)):
            for shape, axis in shapes:
                c = shape[axis]
                if dt == torch.float32:
                    scale = (10 ** torch.empty(c).uniform_(-3, 0)).float()
                else:
                    scale = 2.0 ** torch.randint(-8, 0, (c,)).float()
                zp = torch.randint(qmin, qmax + 1, (c,), dtype=torch.int32)
                # values spread over each channel's range and beyond
                view = [1] * len(shape)
                view[axis] = c
                s = scale.double().reshape(view)
                z = zp.double().reshape(view)
                u = torch.rand(shape, dtype=torch.float64) * 1.4 - 0.2
                x = ((qmin - z) + u * (qmax - qmin)) * s
                x = x.to(dt)
                dy = torch.randn(shape, dtype=dt)
                y, dx = grad_of(lambda t: torch.fake_quantize_per_channel_affine(t, scale, zp, axis, qmin, qmax), x, dy)
                params = {"format": fmt, "narrow": narrow, "qmin": qmin, "qmax": qmax, "axis": axis,
                          "scale": [float(v) for v in scale], "zero_point": [int(v) for v in zp]}
                sname = "x".join(map(str, shape))
                cases.append(case(f"fq_channel/{name}/{dname}/{sname}/axis{axis}", "fq_channel", dname, shape,
                                  {"x": x, "dy": dy, "y": y, "dx": dx}, params))
    return cases


def cast_inputs(dt):
    parts = [torch.randn(300, dtype=torch.float64) * 10.0 ** torch.randint(-9, 6, (300,)).double()]
    edge = [0.0, -0.0, float("nan"), float("inf"), float("-inf"),
            65504.0, 65519.0, 65519.99, 65520.0, -65520.0, 65536.0, 1e6,
            2.0 ** -14, 2.0 ** -24, 2.0 ** -25, 3 * 2.0 ** -26, 2.0 ** -26, 1.5 * 2.0 ** -25,
            1 + 2.0 ** -11, 1 + 3 * 2.0 ** -11, 0.1, 1 / 3, math.pi, -math.pi,
            1.00390625, 1.01171875, 3.4028234663852886e38, -3.4028234663852886e38,
            1e-38, 1e-40, 1e-45, 9.18e-41, 2.0 ** -133, 2.0 ** -134, 3 * 2.0 ** -135]
    parts.append(torch.tensor(edge, dtype=torch.float64))
    # fp16 midpoints and their neighbours, from random codes
    codes = torch.randint(0, 0x7C00, (100,), dtype=torch.int32).to(torch.int16)
    h = codes.view(torch.float16).double()
    h_next = (codes + 1).view(torch.float16).double()
    mid = (h + h_next) / 2
    parts += [mid, torch.nextafter(mid, torch.zeros_like(mid)), torch.nextafter(mid, mid * 2 + 1)]
    x = torch.cat(parts)
    if dt == torch.float32:
        x = x.float()
    return x


def cast_cases():
    cases = []
    for dname, dt in (("float32", torch.float32), ("float64", torch.float64)):
        x = cast_inputs(dt)
        cases.append(case(f"cast/fp16/{dname}", "cast_fp16", dname, x.shape, {"x": x, "y": x.half().to(dt)}))
        x = cast_inputs(dt)
        bits = torch.randint(0, 0x7F80, (100,), dtype=torch.int32)
        b = (bits << 16).view(torch.float32).double()
        bn = ((bits + 1) << 16).view(torch.float32).double()
        mid = ((b + bn) / 2).to(dt)
        x = torch.cat([x, mid, -mid])
        cases.append(case(f"cast/bf16/{dname}", "cast_bf16", dname, x.shape, {"x": x, "y": x.bfloat16().to(dt)}))
    return cases


def lsq_cases():
    cases = []
    for name, (fmt, narrow, qmin, qmax) in RANGES.items():
        for trial, gf in enumerate([1.0, 0.05]):
            scale = f32(10 ** float(torch.empty(1).uniform_(-2, 0)))
            zp = 0 if qmin < 0 else (qmin + qmax + 1) // 2
            x = fq_inputs(100, scale, zp, qmin, qmax, torch.float32)
            x = x[torch.isfinite(x)]
            dy = torch.randn(x.shape)
            xr = x.clone().requires_grad_(True)
            s = torch.tensor([scale], requires_grad=True)
            z = torch.tensor([float(zp)])
            y = torch._fake_quantize_learnable_per_tensor_affine(xr, s, z, qmin, qmax, gf)
            dx, ds = torch.autograd.grad(y, [xr, s], dy)
            params = {"format": fmt, "narrow": narrow, "qmin": qmin, "qmax": qmax, "scale": [scale],
                      "zero_point": [zp], "grad_factor": gf}
            cases.append(case(f"lsq_tensor/{name}/{trial}", "lsq_tensor", "float32", x.shape,
                              {"x": x, "dy": dy, "y": y, "dx": dx, "dscale": ds}, params))
        shape, axis = (3, 4, 16), 1
        c = shape[axis]
        scale = (10 ** torch.empty(c).uniform_(-2, 0)).float()
        zp = torch.zeros(c) if qmin < 0 else torch.full((c,), float((qmin + qmax + 1) // 2))
        view = [1, c, 1]
        u = torch.rand(shape, dtype=torch.float64) * 1.4 - 0.2
        x = (((qmin - zp.double().reshape(view)) + u * (qmax - qmin)) * scale.double().reshape(view)).float()
        dy = torch.randn(shape)
        xr = x.clone().requires_grad_(True)
        s = scale.clone().requires_grad_(True)
        y = torch._fake_quantize_learnable_per_channel_affine(xr, s, zp, axis, qmin, qmax, 1.0)
        dx, ds = torch.autograd.grad(y, [xr, s], dy)
        params = {"format": fmt, "narrow": narrow, "qmin": qmin, "qmax": qmax, "axis": axis,
                  "scale": [float(v) for v in scale], "zero_point": [int(v) for v in zp], "grad_factor": 1.0}
        cases.append(case(f"lsq_channel/{name}", "lsq_channel", "float32", shape,
                          {"x": x, "dy": dy, "y": y, "dx": dx, "dscale": ds}, params))
    return cases


def observer_cases():
    cases = []
    batches = [torch.randn(4, 8) * 2 + 0.5, torch.randn(4, 8) * 3 - 1, torch.randn(4, 8)]
    configs = [
        ("uint8_affine", torch.quint8, torch.per_tensor_affine, 0, 255, "UInt8", False),
        ("int8_affine", torch.qint8, torch.per_tensor_affine, -128, 127, "Int8", False),
        ("int8_sym", torch.qint8, torch.per_tensor_symmetric, -128, 127, "Int8", True),
        ("int4_sym", torch.qint8, torch.per_tensor_symmetric, -8, 7, "Int4", True),
        ("int4_affine", torch.qint8, torch.per_tensor_affine, -8, 7, "Int4", False),
    ]
    for name, dtype, qscheme, qmin, qmax, fmt, sym in configs:
        for kind, cls, extra in (("minmax", MinMaxObserver, {}),
                                 ("moving", MovingAverageMinMaxObserver, {"averaging_constant": 0.01})):
            obs = cls(dtype=dtype, qscheme=qscheme, quant_min=qmin, quant_max=qmax, **extra)
            for b in batches:
                obs(b)
            s, z = obs.calculate_qparams()
            params = {"format": fmt, "symmetric": sym, "kind": kind, "qmin": qmin, "qmax": qmax,
                      "scale": [float(v) for v in s.reshape(-1)], "zero_point": [int(v) for v in z.reshape(-1)]}
            arrays = {f"batch{i}": b for i, b in enumerate(batches)}
            cases.append(case(f"observer/{kind}/{name}", "observer", "float32", [4, 8], arrays, params))
        pqs = torch.per_channel_symmetric if sym else torch.per_channel_affine
        obs = PerChannelMinMaxObserver(ch_axis=1, dtype=dtype, qscheme=pqs, quant_min=qmin, quant_max=qmax)
        for b in batches:
            obs(b)
        s, z = obs.calculate_qparams()
        params = {"format": fmt, "symmetric": sym, "kind": "minmax", "axis": 1, "qmin": qmin, "qmax": qmax,
                  "scale": [float(v) for v in s.reshape(-1)], "zero_point": [int(v) for v in z.reshape(-1)]}
        arrays = {f"batch{i}": b for i, b in enumerate(batches)}
        cases.append(case(f"observer/perchannel/{name}", "observer", "float32", [4, 8], arrays, params))
    return cases


def main():
    torch.manual_seed(20261127)
    cases = fq_tensor_cases() + fq_channel_cases() + cast_cases() + lsq_cases() + observer_cases()
    write("quantize.json", generator_name(__file__), cases)


if __name__ == "__main__":
    main()
