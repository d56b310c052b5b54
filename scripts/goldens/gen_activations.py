"""Goldens for ops.GELU, ops.GELUTanh, ops.SiLU and ops.ReLU.

For each op and dtype: forward y = f(x) and backward dx = dy * f'(x) from
torch.nn.functional with autograd, over random tensors of several shapes and
the hard points (0, ±1e-30, ±5.5, ±10, ±88, ±100 and more).
Writes testdata/activations.json.
"""

import torch
import torch.nn.functional as F

from common import DTYPES, case, generator_name, write

OPS = {
    "gelu": lambda x: F.gelu(x),
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "silu": F.silu,
    "relu": F.relu,
}

HARD_POINTS = [
    0.0, -0.0, 1e-30, -1e-30, 1e-7, -1e-7, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0,
    3.0, -3.0, 5.5, -5.5, 8.0, -8.0, 10.0, -10.0, 20.0, -20.0, 88.0, -88.0,
    100.0, -100.0,
]

SHAPES = [(), (1,), (7,), (3, 5), (2, 3, 4), (2, 1, 3, 2), (64, 33)]


def run(op, x, dy):
    x = x.clone().requires_grad_(True)
    y = OPS[op](x)
    (dx,) = torch.autograd.grad(y, x, dy)
    return y, dx


def arrays(op, x, dy):
    """x, dy, PyTorch's y and dx and, for float32, PyTorch's float64 y64 and
    dx64 on the same inputs: the reference that tells where float32 PyTorch
    itself is inaccurate (the tests accept being closer to it)."""
    y, dx = run(op, x, dy)
    out = {"x": x, "dy": dy, "y": y, "dx": dx}
    if x.dtype == torch.float32:
        out["y64"], out["dx64"] = run(op, x.double(), dy.double())
    return out


def main():
    torch.manual_seed(20261127)
    cases = []
    for op in OPS:
        for dname, dt in DTYPES.items():
            # hard points, with a non-uniform upstream gradient
            x = torch.tensor(HARD_POINTS, dtype=dt)
            dy = torch.linspace(0.5, 2.0, len(HARD_POINTS), dtype=dt)
            cases.append(case(f"{op}/{dname}/hard", op, dname, x.shape, arrays(op, x, dy)))
            # a dense sweep through the region where the functions bend
            x = torch.linspace(-12, 12, 2401, dtype=dt)
            dy = torch.randn(x.shape, dtype=dt)
            cases.append(case(f"{op}/{dname}/sweep", op, dname, x.shape, arrays(op, x, dy)))
            for shape in SHAPES:
                x = (torch.randn(shape, dtype=dt) * 3)
                dy = torch.randn(shape, dtype=dt)
                name = "x".join(map(str, shape)) or "scalar"
                cases.append(case(f"{op}/{dname}/random/{name}", op, dname, shape, arrays(op, x, dy)))
    write("activations.json", generator_name(__file__), cases)


if __name__ == "__main__":
    main()
