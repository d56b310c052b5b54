"""Tiny Llama checkpoints in the Hugging Face layout, and their goldens.

Run: /usr/bin/python3 scripts/goldens/gen_llama.py   (deterministic: fixed
seeds, one thread; about 10 s). Needs only PyTorch: transformers is not
installed, so LlamaForCausalLM's forward pass is written out below as
transformers' modeling_llama.py computes it:

- RMSNorm in float32 (hidden.to(float32), variance = pow(2).mean(-1),
  hidden * rsqrt(variance + eps), then weight * hidden.to(input_dtype));
- RoPE with rotate_half: inv_freq = 1 / theta^(arange(0, Dh, 2) / Dh),
  angles = positions x inv_freq, cos/sin of cat(angles, angles),
  x*cos + rotate_half(x)*sin, rotate_half(x) = cat(-x[Dh/2:], x[:Dh/2]);
- grouped-query attention with repeat_kv (key/value head j serves query
  heads j*H/KV ... (j+1)*H/KV - 1), scores (q @ k^T) * Dh**-0.5, the causal
  mask added as the dtype's most negative value, softmax in float32;
- SwiGLU MLP down(silu(gate(x)) * up(x)); no biases anywhere;
- logits = RMSNorm(x) @ lm_head^T, lm_head = embed_tokens when tied.

Two precisions: "float32" is PyTorch's float32 forward exactly as
transformers runs it (including its float32 RoPE angles); "float64" is the
same model in float64 throughout, with RoPE angles in float64, i.e. the
exact model (transformers would compute the angles in float32 even for a
float64 model; the difference in cos/sin is below 1e-6).

Writes, under testdata/llama/:

- <name>/config.json: the config as transformers writes it (json.dumps,
  indent 2, sorted keys), the same bytes internal/hf.WriteConfig writes;
- <name>/model.safetensors: random weights in the checkpoint's dtype
  (F32, F16 or BF16: rounded from float32 by PyTorch, round to nearest
  even), written by write_safetensors below in the reference layout
  (tensors sorted by dtype size then name, header padded with spaces to 8
  bytes, metadata {"format": "pt"}), the layout internal/safetensors.Write
  reproduces;
- <name>/golden.json.gz: one case in scripts/goldens/common.py's format
  (read with internal/numtest.ReadGolden). Every reference is computed from
  the file's exact weights (the stored F16/BF16 values upcast). Arrays:
  "logits64" and "logits32" (batch x time x vocab) for the token batch in
  params.tokens; "loss64", the mean cross-entropy of each next token; and
  "grad64.<tensor name>", its gradient with respect to the weights named in
  params.grad_names (float64). params.greedy holds, for two prompts, the 16
  tokens greedy decoding appends (float64 forward, recomputed over the
  whole sequence each step) and the smallest top-1/top-2 logit margin met
  on the way, relative to that step's max|logit|; prompts are re-drawn
  until every margin exceeds MIN_MARGIN, far above float32 error, and the
  float32 forward picks the same tokens. params.sha256 maps each tensor to
  the SHA-256 of its float32 values (little-endian), so a reader can check
  every value it loads;
- ops.json.gz: RoPE alone (forward and backward, shapes and positions
  including an offset start as in decoding with a cache, two thetas) and
  grouped-query attention alone (forward and backward, causal, including
  fewer queries than keys as a decoding step has), float64 and float32,
  each float32 case with the float64 result of its float32 inputs
  (<name>64);
- dtypes.json: PyTorch's conversions for internal/safetensors: chosen
  binary16 and bfloat16 bit patterns upcast to float32, and float32 bit
  patterns (ties, near-ties, overflow, NaN) rounded to bfloat16.
"""

import gzip
import hashlib
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

from common import TESTDATA, case, generator_name, values

OUT = os.path.join(TESTDATA, "llama")
GEN = generator_name(__file__)

BATCH, TIME = 2, 8  # the token batch of the logits and loss goldens
GREEDY_N = 16  # tokens appended by greedy decoding
MIN_MARGIN = 1e-3  # required top-1/top-2 margin, relative to max|logit|

# name: config fields, dtype of the file, seed.
CHECKPOINTS = {
    "gqa-f32": dict(vocab=64, hidden=32, heads=4, kv=2, inter=64, layers=2,
                    theta=10000.0, eps=1e-6, tied=False, dtype="F32", seed=1),
    "mha-bf16-tied": dict(vocab=72, hidden=32, heads=4, kv=4, inter=80, layers=2,
                          theta=500000.0, eps=1e-5, tied=True, dtype="BF16", seed=2),
    "gqa-f16": dict(vocab=96, hidden=48, heads=4, kv=2, inter=64, layers=2,
                    theta=10000.0, eps=1e-5, tied=False, dtype="F16", seed=3),
    "mqa-f32-tied": dict(vocab=80, hidden=32, heads=4, kv=1, inter=96, layers=2,
                         theta=500000.0, eps=1e-6, tied=True, dtype="F32", seed=4),
}

TORCH_DTYPE = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
CONFIG_DTYPE = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}
ST_SIZE = {"F32": 4, "F16": 2, "BF16": 2}


# ---------------------------------------------------------------- files


def config_json(c):
    """config.json as transformers' to_json_string writes it."""
    d = {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "head_dim": c["hidden"] // c["heads"],
        "hidden_act": "silu",
        "hidden_size": c["hidden"],
        "initializer_range": 0.02,
        "intermediate_size": c["inter"],
        "max_position_embeddings": 64,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": c["heads"],
        "num_hidden_layers": c["layers"],
        "num_key_value_heads": c["kv"],
        "pretraining_tp": 1,
        "rms_norm_eps": c["eps"],
        "rope_scaling": None,
        "rope_theta": c["theta"],
        "tie_word_embeddings": c["tied"],
        "torch_dtype": CONFIG_DTYPE[c["dtype"]],
        "use_cache": True,
        "vocab_size": c["vocab"],
    }
    return json.dumps(d, indent=2, sort_keys=True) + "\n"


def tensor_bytes(t):
    """The little-endian bytes of a float32/float16/bfloat16 tensor."""
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    assert sys.byteorder == "little"
    return t.numpy().tobytes()


def write_safetensors(path, tensors, dtype):
    """tensors: name -> tensor of dtype. Layout of the reference writer."""
    names = sorted(tensors)  # one dtype: the reference order is by name
    header = {"__metadata__": {"format": "pt"}}
    offset, blobs = 0, []
    for n in names:
        b = tensor_bytes(tensors[n])
        header[n] = {"dtype": dtype, "shape": list(tensors[n].shape),
                     "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """Reads back what write_safetensors wrote: name -> float64 tensor."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = bytearray(data[8 + n + b:8 + n + e])
        dt = TORCH_DTYPE[info["dtype"]]
        if dt == torch.bfloat16:
            t = torch.frombuffer(raw, dtype=torch.int16).view(torch.bfloat16)
        else:
            t = torch.frombuffer(raw, dtype=dt)
        out[name] = t.reshape(info["shape"]).to(torch.float64)
    return out


def write_gz(path, text):
    """gzip with no name and no time stamp, so the bytes are reproducible."""
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as f:
            f.write(text.encode())


def golden_text(cases):
    """common.write's format, as a string."""
    head = {"generator": GEN, "torch": torch.__version__}
    lines = ["{" + ",\n".join(json.dumps(k) + ":" + json.dumps(v) for k, v in head.items()) + ",\n",
             '"cases":[\n', ",\n".join(json.dumps(c, separators=(",", ":")) for c in cases), "\n]}\n"]
    return "".join(lines)


# ---------------------------------------------------------------- weights


def layout(c):
    d, dh = c["hidden"], c["hidden"] // c["heads"]
    q, kv, i, v = c["heads"] * dh, c["kv"] * dh, c["inter"], c["vocab"]
    specs = [("model.embed_tokens.weight", (v, d))]
    for l in range(c["layers"]):
        p = f"model.layers.{l}."
        specs += [(p + "input_layernorm.weight", (d,)),
                  (p + "self_attn.q_proj.weight", (q, d)),
                  (p + "self_attn.k_proj.weight", (kv, d)),
                  (p + "self_attn.v_proj.weight", (kv, d)),
                  (p + "self_attn.o_proj.weight", (d, q)),
                  (p + "post_attention_layernorm.weight", (d,)),
                  (p + "mlp.gate_proj.weight", (i, d)),
                  (p + "mlp.up_proj.weight", (i, d)),
                  (p + "mlp.down_proj.weight", (d, i))]
    specs.append(("model.norm.weight", (d,)))
    if not c["tied"]:
        specs.append(("lm_head.weight", (v, d)))
    return specs


def random_weights(c, g):
    """float32 weights: embeddings N(0, 1), linear weights N(0, 1/in) (so
    activations stay of order 1 and logits spread), norm gains 1 + N(0, 0.2²)."""
    w = {}
    for name, shape in layout(c):
        if name.endswith("norm.weight"):
            w[name] = 1 + 0.2 * torch.randn(shape, generator=g)
        elif name == "model.embed_tokens.weight":
            w[name] = torch.randn(shape, generator=g)
        else:
            w[name] = torch.randn(shape, generator=g) / math.sqrt(shape[1])
    return w


# ---------------------------------------------------------------- the model


def rmsnorm(x, weight, eps):
    input_dtype = x.dtype
    h = x.to(torch.float32) if x.dtype != torch.float64 else x
    variance = h.pow(2).mean(-1, keepdim=True)
    h = h * torch.rsqrt(variance + eps)
    return weight * h.to(input_dtype)


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def rope_cos_sin(positions, dh, theta, dtype):
    """cos and sin, (T, Dh). float32: transformers' LlamaRotaryEmbedding
    (inv_freq and the angles in float32); float64: exact."""
    if dtype == torch.float32:
        inv_freq = 1.0 / (theta ** (torch.arange(0, dh, 2, dtype=torch.int64).float() / dh))
        pos = torch.tensor(positions, dtype=torch.int64)
        freqs = (inv_freq[None, :, None].float() @ pos[None, None, :].float()).transpose(1, 2)[0]
    else:
        inv_freq = 1.0 / (theta ** (torch.arange(0, dh, 2, dtype=torch.float64) / dh))
        freqs = torch.tensor(positions, dtype=torch.float64)[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def apply_rope(x, cos, sin):
    return x * cos + rotate_half(x) * sin


def repeat_kv(x, n_rep):
    b, kv, t, dh = x.shape
    if n_rep == 1:
        return x
    return x[:, :, None, :, :].expand(b, kv, n_rep, t, dh).reshape(b, kv * n_rep, t, dh)


def attention_core(q, k, v, n_rep, offset):
    """q: (B, H, Tq, Dh) at positions offset…offset+Tq−1; k, v: (B, KV, Tk,
    Dh) at 0…Tk−1. Causal: query i sees keys ≤ offset+i."""
    dh = q.shape[-1]
    k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)
    s = torch.matmul(q, k.transpose(2, 3)) * dh ** -0.5
    tq, tk = q.shape[2], k.shape[2]
    future = torch.arange(tk)[None, :] > (offset + torch.arange(tq))[:, None]
    mask = torch.zeros(tq, tk, dtype=q.dtype).masked_fill(future, torch.finfo(q.dtype).min)
    s = s + mask
    soft = torch.float32 if q.dtype != torch.float64 else torch.float64
    p = F.softmax(s, dim=-1, dtype=soft).to(q.dtype)
    return torch.matmul(p, v)


def forward(w, c, tokens):
    """Logits (B, T, V) of LlamaForCausalLM in the dtype of w."""
    b, t = tokens.shape
    d, h, kv = c["hidden"], c["heads"], c["kv"]
    dh = d // h
    x = w["model.embed_tokens.weight"][tokens]
    cos, sin = rope_cos_sin(list(range(t)), dh, c["theta"], x.dtype)
    for l in range(c["layers"]):
        p = f"model.layers.{l}."
        hs = rmsnorm(x, w[p + "input_layernorm.weight"], c["eps"])
        q = F.linear(hs, w[p + "self_attn.q_proj.weight"]).view(b, t, h, dh).transpose(1, 2)
        k = F.linear(hs, w[p + "self_attn.k_proj.weight"]).view(b, t, kv, dh).transpose(1, 2)
        v = F.linear(hs, w[p + "self_attn.v_proj.weight"]).view(b, t, kv, dh).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        a = attention_core(q, k, v, h // kv, 0).transpose(1, 2).reshape(b, t, d)
        x = x + F.linear(a, w[p + "self_attn.o_proj.weight"])
        hs = rmsnorm(x, w[p + "post_attention_layernorm.weight"], c["eps"])
        mlp = F.silu(F.linear(hs, w[p + "mlp.gate_proj.weight"])) * F.linear(hs, w[p + "mlp.up_proj.weight"])
        x = x + F.linear(mlp, w[p + "mlp.down_proj.weight"])
    x = rmsnorm(x, w["model.norm.weight"], c["eps"])
    head = w["model.embed_tokens.weight"] if c["tied"] else w["lm_head.weight"]
    return F.linear(x, head)


def next_token_loss(logits, tokens):
    v = logits.shape[-1]
    return F.cross_entropy(logits[:, :-1].reshape(-1, v), tokens[:, 1:].reshape(-1))


def greedy(w, c, prompt, n):
    """The n tokens greedy decoding appends to prompt, and the smallest
    (top1 − top2) / max|logit| over the steps."""
    seq, margin = list(prompt), math.inf
    for _ in range(n):
        logits = forward(w, c, torch.tensor([seq]))[0, -1]
        top = torch.topk(logits, 2).values
        margin = min(margin, float((top[0] - top[1]) / logits.abs().max()))
        seq.append(int(torch.argmax(logits)))
    return seq[len(prompt):], margin


# ---------------------------------------------------------------- goldens


def sha256_f32(t):
    return hashlib.sha256(t.to(torch.float32).contiguous().numpy().tobytes()).hexdigest()


def checkpoint(name, c):
    g = torch.Generator().manual_seed(c["seed"])
    w32 = random_weights(c, g)
    stored = {k: v.to(TORCH_DTYPE[c["dtype"]]) for k, v in w32.items()}
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        f.write(config_json(c))
    path = os.path.join(d, "model.safetensors")
    write_safetensors(path, stored, c["dtype"])
    # The references start from the file's exact values.
    w64 = read_safetensors(path)
    for k in stored:
        assert torch.equal(w64[k], stored[k].to(torch.float64)), k
    w32 = {k: v.to(torch.float32) for k, v in w64.items()}

    tokens = torch.randint(0, c["vocab"], (BATCH, TIME), generator=g)
    logits64 = forward(w64, c, tokens)
    logits32 = forward(w32, c, tokens)
    rel = float((logits32.double() - logits64).abs().max() / logits64.abs().max())

    grad_names = ["model.norm.weight", "model.layers.0.input_layernorm.weight",
                  "model.layers.1.self_attn.k_proj.weight"]
    if c["tied"]:
        grad_names.append("model.embed_tokens.weight")
    wg = {k: v.clone().requires_grad_(k in grad_names) for k, v in w64.items()}
    loss = next_token_loss(forward(wg, c, tokens), tokens)
    loss.backward()

    # Greedy continuations with a safe margin at every step.
    runs, attempt = [], 0
    while len(runs) < 2:
        attempt += 1
        pg = torch.Generator().manual_seed(1000 * c["seed"] + attempt)
        plen = (4, 7)[len(runs)]
        prompt = torch.randint(0, c["vocab"], (plen,), generator=pg).tolist()
        toks, margin = greedy(w64, c, prompt, GREEDY_N)
        if margin <= MIN_MARGIN:
            continue
        toks32, _ = greedy(w32, c, prompt, GREEDY_N)
        if toks32 != toks:
            continue
        runs.append({"prompt": prompt, "tokens": toks, "min_margin": margin})
    params = {
        "checkpoint": name,
        "tokens": tokens.tolist(),
        "grad_names": grad_names,
        "greedy": runs,
        "greedy_draws": attempt,
        "min_margin": min(r["min_margin"] for r in runs),
        "logits32_rel_err": rel,
        "sha256": {k: sha256_f32(v) for k, v in sorted(w64.items())},
    }
    arrays = {"logits64": logits64, "logits32": logits32, "loss64": loss.detach().reshape(1)}
    for k in grad_names:
        arrays["grad64." + k] = wg[k].grad
    cs = [case(name, "llama_forward", "float64", list(logits64.shape), arrays, params)]
    write_gz(os.path.join(d, "golden.json.gz"), golden_text(cs))
    print(f"{name}: logits32 max err {rel:.2e}·max|logit|, loss {float(loss):.6f}, "
          f"greedy margin {params['min_margin']:.3g} ({attempt} draws)", file=sys.stderr)


def rope_cases():
    cases = []
    shapes = [((1, 1, 5, 8), 0), ((1, 2, 6, 16), 0), ((1, 2, 4, 6), 11), ((1, 1, 3, 32), 40)]
    g = torch.Generator().manual_seed(7)
    for theta in (10000.0, 500000.0):
        for shape, start in shapes:
            x0 = torch.randn(shape, generator=g, dtype=torch.float64)
            dy0 = torch.randn(shape, generator=g, dtype=torch.float64)
            positions = list(range(start, start + shape[2]))
            for dt in (torch.float64, torch.float32):
                x = x0.clone().to(dt).requires_grad_()
                cos, sin = rope_cos_sin(positions, shape[3], theta, dt)
                y = apply_rope(x, cos, sin)
                (y * dy0.to(dt)).sum().backward()
                arrays = {"x": x, "dy": dy0.to(dt), "cos": cos, "sin": sin, "y": y, "dx": x.grad}
                if dt == torch.float32:
                    x64 = x.detach().double().requires_grad_()
                    c64, s64 = rope_cos_sin(positions, shape[3], theta, torch.float64)
                    y64 = apply_rope(x64, c64, s64)
                    (y64 * dy0.to(dt).double()).sum().backward()
                    arrays.update({"cos64": c64, "sin64": s64, "y64": y64, "dx64": x64.grad})
                name = f"rope theta={theta:g} {list(shape)} start={start} {str(dt)[6:]}"
                cases.append(case(name, "rope", str(dt)[6:], shape, arrays,
                                  {"theta": theta, "positions": positions}))
    return cases


def gqa_cases():
    cases = []
    g = torch.Generator().manual_seed(8)
    # (B, H, KV, Tq, Tk, Dh): GQA, MQA, MHA, and a decoding step (Tq < Tk).
    for b, h, kv, tq, tk, dh in [(2, 4, 2, 4, 4, 8), (1, 4, 1, 5, 5, 4), (1, 2, 2, 4, 4, 8), (1, 4, 2, 3, 7, 8)]:
        q0 = torch.randn(b, h, tq, dh, generator=g, dtype=torch.float64)
        k0 = torch.randn(b, kv, tk, dh, generator=g, dtype=torch.float64)
        v0 = torch.randn(b, kv, tk, dh, generator=g, dtype=torch.float64)
        dy0 = torch.randn(b, h, tq, dh, generator=g, dtype=torch.float64)
        offset = tk - tq
        for dt in (torch.float64, torch.float32):
            q, k, v = (t.clone().to(dt).requires_grad_() for t in (q0, k0, v0))
            y = attention_core(q, k, v, h // kv, offset)
            (y * dy0.to(dt)).sum().backward()
            arrays = {"q": q, "k": k, "v": v, "dy": dy0.to(dt), "y": y, "dq": q.grad, "dk": k.grad, "dv": v.grad}
            if dt == torch.float32:
                q6, k6, v6 = (t.detach().double().requires_grad_() for t in (q, k, v))
                y6 = attention_core(q6, k6, v6, h // kv, offset)
                (y6 * dy0.to(dt).double()).sum().backward()
                arrays.update({"y64": y6, "dq64": q6.grad, "dk64": k6.grad, "dv64": v6.grad})
            name = f"gqa B={b} H={h} KV={kv} Tq={tq} Tk={tk} Dh={dh} {str(dt)[6:]}"
            cases.append(case(name, "gqa_attention", str(dt)[6:], [b, h, tq, dh], arrays,
                              {"heads": h, "kv_heads": kv, "tq": tq, "tk": tk, "head_dim": dh,
                               "offset": offset, "scale": dh ** -0.5}))
    return cases


def dtype_conversions():
    """PyTorch's float16/bfloat16 → float32 and float32 → bfloat16, on
    bit patterns, as integers."""
    halves = sorted({0x0000, 0x8000, 0x0001, 0x8001, 0x03ff, 0x83ff, 0x0400, 0x3c00, 0xbc00,
                     0x3555, 0x7bff, 0xfbff, 0x7c00, 0xfc00, 0x7e00, 0xfe00, 0x7c01, 0x7dff, 0x0200,
                     0x0155, 0x3bff, 0x3c01} | set(range(0, 0x10000, 251)))
    h = torch.tensor([x - 0x10000 if x >= 0x8000 else x for x in halves], dtype=torch.int16)
    f16 = h.view(torch.float16).to(torch.float32).view(torch.int32)
    bf = h.view(torch.bfloat16).to(torch.float32).view(torch.int32)
    fl = [0x00000000, 0x80000000, 0x00000001, 0x007fffff, 0x00800000, 0x3f800000, 0x3f808000,
          0x3f818000, 0x3f807fff, 0x3f808001, 0x3f817fff, 0x3f818001, 0x7f7fffff, 0xff7fffff,
          0x7f7f7fff, 0x7f7f8000, 0x7f7f8001, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001,
          0xffc00001, 0x7fffffff, 0x00008000, 0x00018000, 0x80008000, 0x3eaaaaab, 0xc2f6e979]
    g = torch.Generator().manual_seed(9)
    fl += (torch.randint(0, 2**31, (300,), generator=g) * 2 + torch.randint(0, 2, (300,), generator=g)).tolist()
    f = torch.tensor([x - 2**32 if x >= 2**31 else x for x in fl], dtype=torch.int64).to(torch.int32)
    to_bf = f.view(torch.float32).to(torch.bfloat16).view(torch.int16)
    u32 = lambda t: [x & 0xffffffff for x in t.tolist()]
    u16 = lambda t: [x & 0xffff for x in t.tolist()]
    return {"generator": GEN, "torch": torch.__version__,
            "half_bits": halves, "f16_to_f32_bits": u32(f16), "bf16_to_f32_bits": u32(bf),
            "f32_bits": [x & 0xffffffff for x in fl], "f32_to_bf16_bits": u16(to_bf)}


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    for name, c in CHECKPOINTS.items():
        checkpoint(name, c)
    write_gz(os.path.join(OUT, "ops.json.gz"), golden_text(rope_cases() + gqa_cases()))
    with open(os.path.join(OUT, "dtypes.json"), "w") as f:
        json.dump(dtype_conversions(), f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
