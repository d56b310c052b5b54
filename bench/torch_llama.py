"""PyTorch twin of graph.Generator, for the generation rows of go run ./bench.

A Llama model (LlamaForCausalLM's formulas: RMSNorm in float32, rotary
positions in Hugging Face's rotate_half layout, grouped-query attention,
SwiGLU, no biases) read from the Hugging Face checkpoint the harness writes
with graph.SaveHF (config.json and an F32 model.safetensors, parsed here:
this machine's Python has neither transformers nor safetensors), run as
PyTorch's eager decode loop with a KV cache: the prompt in one forward
pass, then one token per step, each attending to the cached keys and
values. The cache is allocated once for the whole sequence (as
transformers' StaticCache; its default DynamicCache concatenates at every
step, which is slower), and the query heads that share a key/value head
multiply it as one broadcast batch, without repeat_kv's copy.

generate(path, prompt, n) returns a function running one greedy
generation of n tokens after prompt, which returns the tokens; prefill(path,
prompt) one that runs the prompt and the LM head at its last position.
"""
import json
import math
import os
import struct

import torch
import torch.nn.functional as F


def load(path):
    """The checkpoint at path: its config and its tensors by name."""
    with open(os.path.join(path, "config.json")) as f:
        cfg = json.load(f)
    with open(os.path.join(path, "model.safetensors"), "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise ValueError(f"{name}: dtype {info['dtype']}, want F32")
        begin, end = info["data_offsets"]
        data = bytearray(raw[8 + n + begin:8 + n + end])
        tensors[name] = torch.frombuffer(data, dtype=torch.float32).reshape(info["shape"])
    return cfg, tensors


class Llama:
    def __init__(self, cfg, t, max_len):
        self.h = cfg["num_attention_heads"]
        self.kv = cfg.get("num_key_value_heads", self.h)
        self.d = cfg["hidden_size"]
        self.dh = self.d // self.h
        self.eps = cfg["rms_norm_eps"]
        self.layers = cfg["num_hidden_layers"]
        self.max_len = max_len
        self.embed = t["model.embed_tokens.weight"]
        self.head = t.get("lm_head.weight", self.embed)
        self.norm = t["model.norm.weight"]
        p = "model.layers.{}."
        self.w = [{k: t[p.format(i) + k + ".weight"] for k in (
            "input_layernorm", "post_attention_layernorm",
            "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
            "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")} for i in range(self.layers)]
        theta = cfg.get("rope_theta", 10000.0)
        inv_freq = 1.0 / (theta ** (torch.arange(0, self.dh, 2, dtype=torch.int64).float() / self.dh))
        freqs = torch.outer(torch.arange(max_len).float(), inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        self.cos, self.sin = emb.cos(), emb.sin()

    def rms(self, x, g):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * g

    @staticmethod
    def rotate_half(x):
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((-x2, x1), dim=-1)

    def new_cache(self):
        shape = (self.layers, self.kv, self.max_len, self.dh)
        return torch.zeros(shape), torch.zeros(shape)

    def forward(self, tokens, start, cache):
        """Logits at the last of tokens (a 1-D tensor) at positions start…"""
        T = tokens.shape[0]
        group = self.h // self.kv
        x = self.embed[tokens]
        cos, sin = self.cos[start:start + T], self.sin[start:start + T]
        end = start + T
        mask = None
        if T > 1:
            mask = torch.full((T, end), float("-inf")).triu(start + 1)
        ck, cv = cache
        for i, w in enumerate(self.w):
            h = self.rms(x, w["input_layernorm"])
            q = F.linear(h, w["self_attn.q_proj"]).view(T, self.h, self.dh).transpose(0, 1)
            k = F.linear(h, w["self_attn.k_proj"]).view(T, self.kv, self.dh).transpose(0, 1)
            v = F.linear(h, w["self_attn.v_proj"]).view(T, self.kv, self.dh).transpose(0, 1)
            q = q * cos + self.rotate_half(q) * sin
            k = k * cos + self.rotate_half(k) * sin
            ck[i, :, start:end] = k
            cv[i, :, start:end] = v
            keys, values = ck[i, :, :end], cv[i, :, :end]  # (kv, end, dh)
            qg = q.reshape(self.kv, group * T, self.dh)     # the heads of a key/value head, stacked
            s = qg @ keys.transpose(1, 2) * (1 / math.sqrt(self.dh))
            s = s.view(self.kv, group, T, end)
            if mask is not None:
                s = s + mask
            p = torch.softmax(s, dim=-1).view(self.kv, group * T, end)
            o = (p @ values).view(self.h, T, self.dh).transpose(0, 1).reshape(T, self.d)
            x = x + F.linear(o, w["self_attn.o_proj"])
            h = self.rms(x, w["post_attention_layernorm"])
            x = x + F.linear(F.silu(F.linear(h, w["mlp.gate_proj"])) * F.linear(h, w["mlp.up_proj"]), w["mlp.down_proj"])
        return F.linear(self.rms(x[-1], self.norm), self.head)


_models = {}


def _model(path, max_len):
    key = (path, max_len)
    if key not in _models:
        _models.clear()
        cfg, t = load(path)
        _models[key] = Llama(cfg, t, max_len)
    return _models[key]


def generate(path, prompt, n):
    m = _model(path, len(prompt) + n)
    prompt = torch.tensor(prompt)

    def run():
        with torch.no_grad():
            cache = m.new_cache()
            logits = m.forward(prompt, 0, cache)
            out = []
            pos = len(prompt)
            while True:
                tok = int(torch.argmax(logits))
                out.append(tok)
                if len(out) == n:
                    return out
                logits = m.forward(torch.tensor([tok]), pos, cache)
                pos += 1

    return run


def prefill(path, prompt):
    m = _model(path, len(prompt))
    prompt = torch.tensor(prompt)

    def run():
        with torch.no_grad():
            return m.forward(prompt, 0, m.new_cache())

    return run
