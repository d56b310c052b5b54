"""Goldens for ops.Softmax and ops.LogSoftmax.

For each op and dtype: forward y = F.softmax(x, dim) or F.log_softmax(x, dim)
and backward dx = autograd.grad(y, x, dy) with a non-uniform dy, over
  - hand-picked facts: [1, 2, 3] and [-1, 0, 1], the same shifted by 1e4,
    and the rows on which Gorgonia's own softmax returns NaN;
  - random shapes of rank 1 to 4 with a random axis, given as PyTorch
    receives it (negative half the time), so non-last axes are covered;
  - offsets of +-1e4 (exp of the raw values overflows float32 and float64),
    with different offsets in different slices (Gorgonia's kernel takes
    every row's maximum from the tensor's first element and fails there);
  - wide spreads (values +-1000 in one slice);
  - partially masked slices: about a third of the entries set to -inf,
    every slice keeping at least one finite entry.
Fully masked slices are left out: PyTorch returns NaN there, where actq
documents zeros (log: -inf) with zero gradient; ops/softmax_test.go tests
that behaviour on its own.
Writes testdata/softmax.json.
"""

import torch
import torch.nn.functional as F

from common import DTYPES, case, generator_name, write

OPS = {"softmax": F.softmax, "log_softmax": F.log_softmax}

# Rank 1 to 4; (1, n) and (n, 1) are where Gorgonia's default axis and its
# column-vector gradient go wrong.
SHAPES = [
    (1,), (7,), (1, 6), (6, 1), (3, 5), (4, 33), (2, 3, 4), (5, 1, 7),
    (3, 4, 65), (2, 1, 3, 2), (2, 3, 4, 5), (16, 130),
]


def run(op, x, dim, dy):
    x = x.clone().requires_grad_(True)
    y = OPS[op](x, dim=dim)
    (dx,) = torch.autograd.grad(y, x, dy)
    return y, dx


def slice_offsets(shape, dim, dt, choices):
    """A tensor broadcastable to shape, constant along dim, whose value in
    each slice is drawn from choices."""
    oshape = list(shape)
    oshape[dim] = 1
    idx = torch.randint(len(choices), oshape)
    return torch.tensor(choices, dtype=dt)[idx]


def mask(x, dim, frac):
    """x with about frac of its entries set to -inf, keeping the maximum of
    every slice along dim finite."""
    keep = x == x.amax(dim=dim, keepdim=True)
    drop = (torch.rand(x.shape) < frac) & ~keep
    return x.masked_fill(drop, float("-inf"))


def add(cases, name, op, dname, x, dim, dy):
    y, dx = run(op, x, dim, dy)
    for t in (y, dx):
        assert not torch.isnan(t).any(), name
    cases.append(case(name, op, dname, x.shape, {"x": x, "dy": dy, "y": y, "dx": dx},
                      params={"axis": dim}))


def main():
    torch.manual_seed(20261127)
    cases = []
    for op in OPS:
        for dname, dt in DTYPES.items():
            pre = f"{op}/{dname}"
            # the hand-picked facts, each with its own dy
            facts = [
                ("123", [1.0, 2.0, 3.0], [1.0, 0.0, 0.0]),
                ("123_dy123", [1.0, 2.0, 3.0], [1.0, 2.0, 3.0]),
                ("1e4", [10000.0, 10001.0, 10002.0], [1.0, 2.0, 3.0]),
                ("m101", [-1.0, 0.0, 1.0], [1.0, 0.0, 0.0]),
                ("rows_0123_1e4", [[0.0, 1.0, 2.0, 3.0], [10000.0, 10001.0, 10002.0, 10003.0]],
                 [[1.0, 0.5, 0.25, 2.0], [0.0, -1.0, 3.0, 1.0]]),
                ("gorgonia_nan", [[0.0, 0.0], [1000.0, 0.0]], [[1.0, 2.0], [3.0, 4.0]]),
                ("gorgonia_nan2", [[0.0, 0.0], [-1000.0, -1001.0]], [[1.0, 2.0], [3.0, 4.0]]),
            ]
            for name, xv, dyv in facts:
                x, dy = torch.tensor(xv, dtype=dt), torch.tensor(dyv, dtype=dt)
                add(cases, f"{pre}/fact/{name}", op, dname, x, -1, dy)
            for shape in SHAPES:
                rank = len(shape)
                sname = "x".join(map(str, shape))
                for variant in ("plain", "offset", "spread", "masked"):
                    dim = int(torch.randint(rank, ()))
                    if torch.rand(()) < 0.5:
                        dim -= rank  # as a negative axis
                    x = torch.randn(shape, dtype=dt) * 3
                    if variant == "offset":
                        x = x + slice_offsets(shape, dim, dt, [1e4, -1e4, 0.0])
                    elif variant == "spread":
                        x = x * 300
                    elif variant == "masked":
                        x = mask(x + slice_offsets(shape, dim, dt, [1e4, 0.0]), dim, 0.35)
                    dy = torch.randn(shape, dtype=dt)
                    add(cases, f"{pre}/{variant}/{sname}/axis{dim}", op, dname, x, dim, dy)
    write("softmax.json", generator_name(__file__), cases)


if __name__ == "__main__":
    main()
