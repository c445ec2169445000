"""Native PyTorch's side of the attention workloads (sdpa, gpt, kvcache; lib/attention.mjs).

    /usr/bin/python3 bench/torch_attention.py torch <workload> <config.json> <result.json>

Mirrors workloads/attention.mjs rule for rule with torch_bench.py's timing, thread pinning
(imported first, so the BLAS is pinned before torch loads), memory and BLAS report.
"""

import math

from torch_bench import encode_f32, mulberry32, run_child, time_calls, time_checked_steps

import torch  # noqa: E402  (torch_bench pinned the threads before loading it)
import torch.nn.functional as F  # noqa: E402


def sdpa_builtin(q, k, v):
    """PyTorch 1.13's own op (its math path on CPU: the weights are materialised)."""
    return F._scaled_dot_product_attention(q, k, v, None, 0.0, False, True)[0]


def sdpa_written(q, k, v, mask):
    s = (q @ k.transpose(-2, -1)) * (1 / math.sqrt(q.shape[-1]))
    return s.masked_fill(mask, float("-inf")).softmax(-1) @ v


def check_sdpa(q, k, v, g, got, T):
    """The last timed call's output and gradients vs float64, on the first and last head."""
    names = ["output", "dq", "dk", "dv"]
    B, H = q.shape[:2]
    err, checked = 0.0, 0
    for b, h in {(0, 0), (B - 1, H - 1)}:
        q64, k64, v64 = [t[b, h].detach().double().requires_grad_() for t in (q, k, v)]
        mask = torch.ones(T, T, dtype=torch.bool).triu(1)
        o = sdpa_written(q64, k64, v64, mask)
        want = [o, *torch.autograd.grad(o, (q64, k64, v64), g[b, h].double())]
        for n, (x, w) in enumerate(zip(got, want)):
            x = x[b, h].double()
            bad = (x - w).abs() > 1e-4 + 1e-3 * w.abs()
            if bad.any():
                i = bad.nonzero()[0].tolist()
                raise ValueError(f"sdpa T {T}: {names[n]}{i} = {x[tuple(i)]}, float64 gives {w[tuple(i)]}")
            err = max(err, (x - w).abs().max().item())
            checked += x.numel()
    for n in range(1, 4):
        if not got[n].abs().max() > 0:
            raise ValueError(f"sdpa T {T}: {names[n]} is all zeros")
    return {"checkedValues": checked, "maxAbsError": err}


def sdpa(config, mem):
    c = config["sdpa"]
    torch.manual_seed(config["seed"])
    cases = []
    for T in c["lengths"]:
        shape = (c["batch"], c["heads"], T, c["headDim"])
        q, k, v = [(torch.rand(shape) * 2 - 1).requires_grad_() for _ in range(3)]
        g = torch.rand(shape) * 2 - 1
        mask = torch.ones(T, T, dtype=torch.bool).triu(1)
        best = None
        # Both of PyTorch 1.13's ways; the faster one is its figure.
        for via, fn in (
            ("F._scaled_dot_product_attention(q, k, v, None, 0.0, False, True) + autograd.grad", sdpa_builtin),
            ("softmax(q kᵀ/√E masked) v written out + autograd.grad", lambda q, k, v: sdpa_written(q, k, v, mask)),
        ):
            last = [None]

            def call():
                o = fn(q, k, v)
                last[0] = [o.detach(), *torch.autograd.grad(o, (q, k, v), g)]

            t = time_calls(call, **c["timing"])
            check = check_sdpa(q, k, v, g, last[0], T)
            entry = {**t, "via": via, "check": check}
            if best is None or entry["ms"] < best["ms"]:
                best = {**entry, "other": best}
            else:
                best["other"] = entry
            mem.sample()
        cases.append({"T": T, "shape": list(shape), **best, "verified": "last timed call"})
    return {"sdpa": {"cases": cases}}


def markov_batches(vocab, batch, seqLen, count, seed):
    """tinygpt.mjs's markovBatches: the same generator, so the same tokens."""
    r = mulberry32(seed)
    nxt = [[math.floor(r() * vocab) for _ in range(3)] for _ in range(vocab)]
    out = []
    for _ in range(count):
        ids = []
        for _ in range(batch):
            t = math.floor(r() * vocab)
            for _ in range(seqLen):
                ids.append(t)
                t = nxt[t][math.floor(r() * 3)]
        out.append(torch.tensor(ids, dtype=torch.long).view(batch, seqLen))
    return out


class Attn(torch.nn.Module):
    def __init__(self, C):
        super().__init__()
        self.c_attn = torch.nn.Linear(C, 3 * C)
        self.c_proj = torch.nn.Linear(C, C)


class Mlp(torch.nn.Module):
    def __init__(self, C):
        super().__init__()
        self.c_fc = torch.nn.Linear(C, 4 * C)
        self.c_proj = torch.nn.Linear(4 * C, C)


class Block(torch.nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.H = H
        self.ln_1 = torch.nn.LayerNorm(C)
        self.attn = Attn(C)
        self.ln_2 = torch.nn.LayerNorm(C)
        self.mlp = Mlp(C)

    def forward(self, x, past=None):
        B, T, C = x.shape
        q, k, v = self.attn.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = [t.view(B, T, self.H, C // self.H).transpose(1, 2) for t in (q, k, v)]
        if past is not None:
            k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
        y = F._scaled_dot_product_attention(q, k, v, None, 0.0, False, past is None)[0]
        h = x + self.attn.c_proj(y.transpose(1, 2).reshape(B, T, C))
        return h + self.mlp.c_proj(F.gelu(self.mlp.c_fc(self.ln_2(h)), approximate="tanh")), (k, v)


class Transformer(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.wte = torch.nn.Embedding(m["vocabSize"], m["nEmbd"])
        self.wpe = torch.nn.Embedding(m["nPositions"], m["nEmbd"])
        self.h = torch.nn.ModuleList(Block(m["nEmbd"], m["nHead"]) for _ in range(m["nLayer"]))
        self.ln_f = torch.nn.LayerNorm(m["nEmbd"])


class GPT(torch.nn.Module):
    """GPT-2 as tinygpt.mjs writes it: pre-LN blocks, tanh GELU, tied head, HF's init."""

    def __init__(self, m):
        super().__init__()
        self.transformer = Transformer(m)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if "ln_" in name:
                    continue
                if name.endswith(".bias"):
                    p.zero_()
                else:
                    p.normal_(0, 0.02 / math.sqrt(2 * m["nLayer"]) if name.endswith("c_proj.weight") else 0.02)

    def forward(self, ids, labels=None, past=None):
        B, T = ids.shape
        start = past[0][0].shape[2] if past is not None else 0
        tr = self.transformer
        x = tr.wte(ids) + tr.wpe(torch.arange(start, start + T))
        presents = []
        for i, block in enumerate(tr.h):
            x, kv = block(x, past[i] if past is not None else None)
            presents.append(kv)
        logits = tr.ln_f(x) @ tr.wte.weight.T
        loss = None
        if labels is not None:
            V = logits.shape[-1]
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1))
        return logits, loss, presents


def gpt(config, mem):
    c = config["gpt"]
    torch.manual_seed(config["seed"])
    model = GPT(c["model"])
    d = c["data"]
    batches = markov_batches(d["vocab"], d["batch"], d["seqLen"], c["batches"], d["seed"])
    opt = torch.optim.AdamW(model.parameters(), lr=c["lr"], weight_decay=c["weightDecay"])

    def step(ids):
        opt.zero_grad()
        _, loss, _ = model(ids, ids)
        loss.backward()
        opt.step()
        return loss.item()

    def params():
        return [encode_f32(p) for p in model.parameters()]

    def loss_after(ids):
        with torch.no_grad():
            return {"lossAfter": model(ids, ids)[1].item()}

    ms, fields = time_checked_steps(batches, step, params, c["timing"], mem.sample, loss_after)
    tokens = d["batch"] * d["seqLen"]
    return {
        "gpt": {
            "via": "GPT-2 written in torch.nn (F._scaled_dot_product_attention, causal)",
            "tokensPerStep": tokens,
            "tokensPerSec": tokens * 1000 / ms,
            **fields,
        }
    }


def kvcache(config, mem):
    c = config["kvcache"]
    torch.manual_seed(config["seed"])
    model = GPT(c["model"]).eval()
    m = c["model"]
    (tokens,) = markov_batches(m["vocabSize"], 1, c["prefix"] + c["newTokens"], 1, c["seed"])
    prefix, fed = tokens[:, : c["prefix"]], [tokens[:, i : i + 1] for i in range(c["prefix"], tokens.shape[1])]
    with torch.no_grad():
        past = model(prefix)[2]

    def cached():
        rows, kv = [], past
        for ids in fed:
            logits, _, kv = model(ids, past=kv)
            rows.append(logits[0, -1])
            rows[-1].argmax().item()
        return rows

    def rerun():
        rows, ids = [], prefix
        for t in fed:
            ids = torch.cat([ids, t], 1)
            rows.append(model(ids)[0][0, -1])
            rows[-1].argmax().item()
        return rows

    out = {}
    with torch.no_grad():
        tc = time_calls(lambda: out.__setitem__("a", cached()), **c["timing"])
        mem.sample()
        tr = time_calls(lambda: out.__setitem__("b", rerun()), **c["timing"])
        mem.sample()
    err = max((x - y).abs().max().item() for x, y in zip(out["a"], out["b"]))
    if not err <= c["tolerance"]:
        raise ValueError(f"kvcache: the cached generation's logits differ from re-running the prefix by {err}")
    n = len(fed)
    return {
        "kvcache": {
            "via": "GPT-2 written in torch.nn, keys and values concatenated per step",
            "prefix": c["prefix"],
            "newTokens": n,
            "cachedMsPerToken": tc["ms"] / n,
            "rerunMsPerToken": tr["ms"] / n,
            "speedup": tr["ms"] / tc["ms"],
            "contended": tc["contended"] or tr["contended"],
            "cachedSamples": tc["samples"],
            "rerunSamples": tr["samples"],
            "verified": "last timed generation of each way",
            "check": {"positions": n, "maxAbsError": err},
        }
    }


def run_workload(workload, config, mem):
    return {"sdpa": sdpa, "gpt": gpt, "kvcache": kvcache}[workload](config, mem)


if __name__ == "__main__":
    run_child(run_workload)
