"""Shared helpers for actq's golden generators.

Run with Debian's PyTorch (apt-get install -y python3-torch) as
/usr/bin/python3. Each gen_*.py writes one JSON file under testdata/ that the
Go tests read with internal/numtest.ReadGolden.

Format: {"generator": ..., "torch": ..., "cases": [case, ...]}, a case being
{"name", "op", "dtype", "shape", "params", "arrays": {name: [values]}}.
Values are Python repr strings ("0.1", "-0.0", "nan", "inf", "-inf"): exact
for float64, and exact for float32 values (read as float64, converted back).
"""

import json
import os
import sys

import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TESTDATA = os.path.join(ROOT, "testdata")

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def values(t):
    """The flattened tensor as a list of repr strings."""
    return [repr(float(v)) for v in t.detach().reshape(-1).tolist()]


def case(name, op, dtype, shape, arrays, params=None):
    c = {"name": name, "op": op, "dtype": dtype, "shape": list(shape)}
    if params:
        c["params"] = params
    c["arrays"] = {k: values(v) for k, v in arrays.items()}
    return c


def write(filename, generator, cases):
    """Write cases to testdata/filename, one case per line."""
    os.makedirs(TESTDATA, exist_ok=True)
    path = os.path.join(TESTDATA, filename)
    head = {"generator": generator, "torch": torch.__version__}
    with open(path, "w") as f:
        f.write("{")
        for k, v in head.items():
            f.write(json.dumps(k) + ":" + json.dumps(v) + ",\n")
        f.write('"cases":[\n')
        for i, c in enumerate(cases):
            f.write(json.dumps(c, separators=(",", ":")))
            f.write(",\n" if i + 1 < len(cases) else "\n")
        f.write("]}\n")
    print(f"wrote {path}: {len(cases)} cases", file=sys.stderr)


def generator_name(file):
    return "scripts/goldens/" + os.path.basename(file)
