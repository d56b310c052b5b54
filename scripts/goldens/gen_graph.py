"""Goldens for package graph: FFN, Attention, the norms, a pre-norm Block
and a tiny decoder-only model with its cross-entropy loss.

Each case gives the inputs, the weights (named as in the Go package), an
upstream gradient dy (non-uniform, so a backward pass that ignores it
fails), and PyTorch's output y and gradients d<name> of sum(y * dy) with
respect to the input and every weight. Float32 cases also carry the float64
result of the same float32 inputs (<name>64), which tells how far float32
PyTorch itself is from the exact value.

PyTorch 1.13 has no scaled_dot_product_attention and no RMSNorm: both are
composed by hand, as the Go package's contract (DESIGN.md) states them.
Writes testdata/graph.json.
"""

import math

import torch
import torch.nn.functional as F

from common import DTYPES, case, generator_name, write

ACTS = {
    "gelu": lambda x: F.gelu(x),
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "silu": F.silu,
    "relu": F.relu,
}

EPS = 1e-5


def ffn(x, w, act, gated, prefix=""):
    h = ACTS[act](x @ w[prefix + "W1"] + w[prefix + "B1"])
    if gated:
        h = h * (x @ w[prefix + "W3"] + w[prefix + "B3"])
    return h @ w[prefix + "W2"] + w[prefix + "B2"]


def attention(x, w, heads, causal, prefix=""):
    b, t, d = x.shape
    dh = d // heads

    def split(m):  # (b, t, d) -> (b, heads, t, dh)
        return m.reshape(b, t, heads, dh).transpose(1, 2)

    q, k, v = (split(x @ w[prefix + n]) for n in ("Wq", "Wk", "Wv"))
    s = q @ k.transpose(-1, -2) / math.sqrt(dh)
    if causal:
        mask = torch.triu(torch.full((t, t), float("-inf"), dtype=x.dtype), diagonal=1)
        s = s + mask
    p = torch.softmax(s, dim=-1)
    o = (p @ v).transpose(1, 2).reshape(b, t, d)
    return o @ w[prefix + "Wo"]


def rmsnorm(x, g):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * g


def layernorm(x, g, b):
    return F.layer_norm(x, (x.shape[-1],), g, b, EPS)


def norm(x, w, prefix, kind):
    if kind == "rms":
        return rmsnorm(x, w[prefix + "g"])
    return layernorm(x, w[prefix + "g"], w[prefix + "b"])


def block(x, w, cfg, prefix=""):
    x = x + attention(norm(x, w, prefix + "norm1.", cfg["norm"]), w, cfg["heads"], True, prefix + "attn.")
    b, t, d = x.shape
    h = norm(x, w, prefix + "norm2.", cfg["norm"]).reshape(b * t, d)
    return x + ffn(h, w, cfg["act"], cfg["gated"], prefix + "ffn.").reshape(b, t, d)


def model_loss(tokens, targets, w, cfg):
    """Logits of the tiny model and its mean cross-entropy over targets that
    are not -1."""
    b, t = tokens.shape
    x = w["embed.tok"][tokens] + w["embed.pos"][torch.arange(t)]
    for i in range(cfg["layers"]):
        x = block(x, w, cfg, f"block{i}.")
    x = norm(x.reshape(b * t, -1), w, "final_norm.", cfg["norm"])
    logits = x @ w["head.W"]
    loss = F.cross_entropy(logits, targets.reshape(-1), ignore_index=-1)
    return logits, loss


def grads(fn, inputs, weights, dy):
    """y = fn(inputs, weights) and the gradients of sum(y * dy) with respect
    to every input and weight."""
    xs = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    ws = {k: v.clone().requires_grad_(True) for k, v in weights.items()}
    y = fn(xs, ws)
    names = list(xs) + list(ws)
    gs = torch.autograd.grad(y, [xs.get(n, ws.get(n)) for n in names], dy, allow_unused=True)
    out = {"y": y}
    for n, gr in zip(names, gs):
        out["d" + n] = gr if gr is not None else torch.zeros_like(xs.get(n, ws.get(n)))
    return out


def emit(cases, name, op, dname, shape, fn, inputs, weights, dy, params):
    """Add a case with PyTorch's results in dtype dname, and for float32 the
    float64 results of the same values."""
    dt = DTYPES[dname]
    inputs = {k: v.to(dt) for k, v in inputs.items()}
    weights = {k: v.to(dt) for k, v in weights.items()}
    dy = dy.to(dt)
    arrays = dict(inputs)
    arrays.update(weights)
    arrays["dy"] = dy
    arrays.update(grads(fn, inputs, weights, dy))
    if dt == torch.float32:
        ref = grads(fn, {k: v.double() for k, v in inputs.items()},
                    {k: v.double() for k, v in weights.items()}, dy.double())
        arrays.update({k + "64": v for k, v in ref.items()})
    cases.append(case(name, op, dname, shape, arrays, params))


def randw(*shape, scale=1.0):
    return torch.randn(*shape, dtype=torch.float64) * scale


def ffn_weights(d, h, gated, prefix=""):
    w = {
        prefix + "W1": randw(d, h, scale=1 / math.sqrt(d)),
        prefix + "B1": randw(h, scale=0.5),
        prefix + "W2": randw(h, d, scale=1 / math.sqrt(h)),
        prefix + "B2": randw(d, scale=0.5),
    }
    if gated:
        w[prefix + "W3"] = randw(d, h, scale=1 / math.sqrt(d))
        w[prefix + "B3"] = randw(h, scale=0.5)
    return w


def attn_weights(d, prefix=""):
    return {prefix + n: randw(d, d, scale=1 / math.sqrt(d)) for n in ("Wq", "Wk", "Wv", "Wo")}


def norm_weights(d, kind, prefix):
    w = {prefix + "g": 1 + randw(d, scale=0.2)}
    if kind == "layer":
        w[prefix + "b"] = randw(d, scale=0.2)
    return w


def block_weights(d, cfg, prefix=""):
    w = {}
    w.update(norm_weights(d, cfg["norm"], prefix + "norm1."))
    w.update(attn_weights(d, prefix + "attn."))
    w.update(norm_weights(d, cfg["norm"], prefix + "norm2."))
    w.update(ffn_weights(d, cfg["hidden"], cfg["gated"], prefix + "ffn."))
    return w


def main():
    torch.manual_seed(20261128)
    cases = []

    # FFN: every activation, plain and gated; x (n, d).
    n, d, h = 6, 8, 16
    for act in ACTS:
        for gated in (False, True):
            x = randw(n, d, scale=1.5)
            w = ffn_weights(d, h, gated)
            dy = randw(n, d)
            params = {"d_model": d, "d_hidden": h, "activation": act, "gated": gated}
            for dname in DTYPES:
                kind = "gated" if gated else "plain"
                emit(cases, f"ffn/{act}/{kind}/{dname}", "ffn", dname, (n, d),
                     lambda xs, ws, a=act, g=gated: ffn(xs["x"], ws, a, g),
                     {"x": x}, w, dy, params)

    # Attention: 1, 2 and 4 heads, causal and not; x (batch, seq, d).
    b, t, d = 2, 5, 16
    for heads in (1, 2, 4):
        for causal in (False, True):
            x = randw(b, t, d)
            w = attn_weights(d)
            dy = randw(b, t, d)
            params = {"d_model": d, "heads": heads, "causal": causal}
            for dname in DTYPES:
                kind = "causal" if causal else "full"
                emit(cases, f"attention/h{heads}/{kind}/{dname}", "attention", dname, (b, t, d),
                     lambda xs, ws, hh=heads, c=causal: attention(xs["x"], ws, hh, c),
                     {"x": x}, w, dy, params)

    # Norms over the last axis of x (n, d).
    n, d = 5, 8
    for kind in ("rms", "layer"):
        x = randw(n, d, scale=2) + 0.5
        w = norm_weights(d, kind, "")
        dy = randw(n, d)
        for dname in DTYPES:
            emit(cases, f"norm/{kind}/{dname}", "norm", dname, (n, d),
                 lambda xs, ws, k=kind: norm(xs["x"], ws, "", k),
                 {"x": x}, w, dy, {"norm": kind})

    # A pre-norm block (causal attention).
    b, t, d = 2, 4, 8
    for cfg in ({"heads": 2, "hidden": 16, "act": "gelu", "gated": False, "norm": "rms"},
                {"heads": 2, "hidden": 12, "act": "silu", "gated": True, "norm": "layer"}):
        x = randw(b, t, d)
        w = block_weights(d, cfg)
        dy = randw(b, t, d)
        params = {"d_model": d, "heads": cfg["heads"], "d_hidden": cfg["hidden"],
                  "activation": cfg["act"], "gated": cfg["gated"], "norm": cfg["norm"]}
        for dname in DTYPES:
            emit(cases, f"block/{cfg['act']}/{cfg['norm']}/{dname}", "block", dname, (b, t, d),
                 lambda xs, ws, c=cfg: block(xs["x"], ws, c), {"x": x}, w, dy, params)

    # The tiny model: logits and the loss, with gradients of the loss.
    cfg = {"vocab": 7, "seq": 5, "d": 8, "heads": 2, "hidden": 16, "layers": 2,
           "act": "gelu_tanh", "gated": True, "norm": "rms"}
    b = 3
    tokens = torch.randint(0, cfg["vocab"], (b, cfg["seq"]))
    targets = torch.randint(0, cfg["vocab"], (b, cfg["seq"]))
    targets[:, :2] = -1  # the first two positions are not scored
    w = {"embed.tok": randw(cfg["vocab"], cfg["d"]), "embed.pos": randw(cfg["seq"], cfg["d"], scale=0.5)}
    for i in range(cfg["layers"]):
        w.update(block_weights(cfg["d"], cfg, f"block{i}."))
    w.update(norm_weights(cfg["d"], cfg["norm"], "final_norm."))
    w["head.W"] = randw(cfg["d"], cfg["vocab"], scale=1 / math.sqrt(cfg["d"]))
    params = {"vocab": cfg["vocab"], "seq_len": cfg["seq"], "d_model": cfg["d"], "heads": cfg["heads"],
              "d_hidden": cfg["hidden"], "layers": cfg["layers"], "activation": cfg["act"],
              "gated": cfg["gated"], "norm": cfg["norm"], "batch": b,
              "tokens": tokens.reshape(-1).tolist(), "targets": targets.reshape(-1).tolist()}
    for dname in DTYPES:
        dt = DTYPES[dname]
        ws = {k: v.to(dt).clone().requires_grad_(True) for k, v in w.items()}
        logits, loss = model_loss(tokens, targets, ws, cfg)
        names = list(ws)
        gs = torch.autograd.grad(loss, [ws[k] for k in names])
        arrays = {k: v for k, v in ws.items()}
        arrays["logits"] = logits
        arrays["loss"] = loss.reshape(1)
        arrays.update({"d" + k: g for k, g in zip(names, gs)})
        if dt == torch.float32:
            ws64 = {k: v.detach().double().requires_grad_(True) for k, v in ws.items()}
            logits64, loss64 = model_loss(tokens, targets, ws64, cfg)
            gs64 = torch.autograd.grad(loss64, [ws64[k] for k in names])
            arrays["logits64"] = logits64
            arrays["loss64"] = loss64.reshape(1)
            arrays.update({"d" + k + "64": g for k, g in zip(names, gs64)})
        cases.append(case(f"model/{dname}", "model", dname, (b, cfg["seq"]), arrays, params))

    write("graph.json", generator_name(__file__), cases)


if __name__ == "__main__":
    main()
