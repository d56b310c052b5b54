"""PyTorch twin of graph.Model, for the end-to-end rows of go run ./bench.

The model is actq's graph.Model written with torch.nn: token and learned
position embeddings (N(0, 1)), pre-norm blocks of RMSNorm (ε 1e-5, a gain),
causal multi-head attention without biases, an FFN with biases
(act(x·W1 + B1)·W2 + B2, or gated (act(x·W1 + B1) ⊙ (x·W3 + B3))·W2 + B2),
a final RMSNorm and an LM head without bias; the loss is the mean
cross-entropy, the optimiser Adam (lr 1e-3). A model is named by seven
integers, as the harness sends them in a request's "shape":

    [vocab, seq, d_model, heads, d_hidden, layers, batch]

and its activation by the op name's suffix ("model_train:gelu").

train(spec) and evaluate(spec) return a function that runs one step on a
fixed random batch: a training step (forward, loss, backward, Adam update)
or an evaluation pass (forward under no_grad, loss, argmax and the count of
correct predictions, as graph.Evaluator.Eval computes its Metrics).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

ACTIVATIONS = {
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "silu": F.silu,
    "relu": F.relu,
}


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.g = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.g


class Block(nn.Module):
    def __init__(self, d, heads, hidden, act, gated):
        super().__init__()
        self.heads, self.act, self.gated = heads, ACTIVATIONS[act], gated
        self.norm1, self.norm2 = RMSNorm(d), RMSNorm(d)
        self.wq, self.wk, self.wv, self.wo = (nn.Linear(d, d, bias=False) for _ in range(4))
        self.w1, self.w2 = nn.Linear(d, hidden), nn.Linear(hidden, d)
        self.w3 = nn.Linear(d, hidden) if gated else None

    def attention(self, x, mask):
        b, t, d = x.shape
        h = self.heads
        q, k, v = (w(x).view(b, t, h, d // h).transpose(1, 2) for w in (self.wq, self.wk, self.wv))
        s = q @ k.transpose(-1, -2) * (1 / math.sqrt(d // h)) + mask
        o = torch.softmax(s, -1) @ v
        return self.wo(o.transpose(1, 2).reshape(b, t, d))

    def ffn(self, x):
        h = self.act(self.w1(x))
        if self.gated:
            h = h * self.w3(x)
        return self.w2(h)

    def forward(self, x, mask):
        x = x + self.attention(self.norm1(x), mask)
        return x + self.ffn(self.norm2(x))


class Model(nn.Module):
    def __init__(self, vocab, seq, d, heads, hidden, layers, act, gated):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(seq, d)
        self.blocks = nn.ModuleList(Block(d, heads, hidden, act, gated) for _ in range(layers))
        self.norm = RMSNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        self.register_buffer("mask", torch.full((seq, seq), float("-inf")).triu(1))

    def forward(self, tokens):
        t = tokens.shape[1]
        x = self.tok(tokens) + self.pos(torch.arange(t))
        for bl in self.blocks:
            x = bl(x, self.mask[:t, :t])
        return self.head(self.norm(x))


def _setup(spec, act, gated):
    vocab, seq, d, heads, hidden, layers, batch = spec
    torch.manual_seed(1)
    m = Model(vocab, seq, d, heads, hidden, layers, act, gated)
    tokens = torch.randint(vocab, (batch, seq))
    targets = torch.randint(vocab, (batch, seq))
    return m, tokens, targets, vocab


def train(spec, act="gelu", gated=False):
    m, tokens, targets, vocab = _setup(spec, act, gated)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)

    def step():
        with torch.enable_grad():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(m(tokens).view(-1, vocab), targets.view(-1))
            loss.backward()
            opt.step()

    return step


def evaluate(spec, act="gelu", gated=False):
    m, tokens, targets, vocab = _setup(spec, act, gated)
    m.eval()

    def step():
        with torch.no_grad():
            logits = m(tokens).view(-1, vocab)
            F.cross_entropy(logits, targets.view(-1)).item()
            (logits.argmax(-1) == targets.view(-1)).sum().item()

    return step
