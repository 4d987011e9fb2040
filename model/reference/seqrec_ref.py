#!/usr/bin/python3
"""seqrec_ref.py: the PyTorch reference of model/seqrec.c, as llm.c's
train_gpt2.py is for test_gpt2.c.  Builds tiny models with seqrec.c's exact
parameter layout, runs one batch through them in float64 and writes
tests/data/seqrec_ref.bin: for each case the config, the parameters (float32,
in the C arena's order), the batch, the final hidden states, the loss, every
parameter gradient and the parameters after one clipped AdamW step.  The C
test (tests/test_seqrec_ref.c) needs only that file.

Run with Debian's python3-torch:  /usr/bin/python3 model/reference/seqrec_ref.py [out.bin]

The model (see seqrec.h): input = wte[item] * (sqrt(C) if scale_emb) +
wpe[position] + the enabled features' tables (position: counted back from
the latest event, or with pos 1 from the row's first event, padding slots
taking row 0); blocks are pre-LN,
x += attproj(attn(ln1(x))); x += fcproj(act(fc(ln2(x)))); then ln_f
(or SASRec's wiring, block 1: see seqrec.h).
Sequences are left-padded: slot t of row b is an event when t >= pad[b];
attention is causal and masks padding keys; padding queries give zeros.
A batch of T slots uses the LAST T of the model's positions.  Logits are
h @ wte^T with row 0 (padding) left out of the softmax; the loss is the mean
cross-entropy over slots whose target is not 0.  Dropout is 0 here.
"""
import math
import struct
import sys

import torch

FEATURES = [("action", 256), ("hour", 24), ("weekday", 7), ("gap", 32), ("device", 256)]
MAGIC = b"RSEQREF1"


def layout(cfg):
    """(name, shape, decay) in seqrec_layout()'s order."""
    C, L, F, V, T = cfg["C"], cfg["L"], cfg["F"], cfg["V"], cfg["T"]
    t = [("wte", (V, C), 0), ("wpe", (T, C), 0)]
    for i, (name, rows) in enumerate(FEATURES):
        if cfg["features"] & (1 << i):
            t.append((name, (rows, C), 0))
    t += [("ln1w", (L, C), 0), ("ln1b", (L, C), 0),
          ("qkvw", (L, 3 * C, C), 1), ("qkvb", (L, 3 * C), 0),
          ("attprojw", (L, C, C), 1), ("attprojb", (L, C), 0),
          ("ln2w", (L, C), 0), ("ln2b", (L, C), 0),
          ("fcw", (L, F, C), 1), ("fcb", (L, F), 0),
          ("fcprojw", (L, C, F), 1), ("fcprojb", (L, C), 0),
          ("lnfw", (C,), 0), ("lnfb", (C,), 0)]
    return t


def init_params(cfg, gen):
    params = {}
    for name, shape, _ in layout(cfg):
        if name in ("ln1w", "ln2w", "lnfw"):
            # not exactly 1, so a swapped weight and bias would show
            w = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        elif name.endswith("b") and name not in ("wte", "wpe"):
            w = 0.1 * torch.randn(shape, generator=gen)
        else:
            w = 0.2 * torch.randn(shape, generator=gen)
        params[name] = w.to(torch.float32)
    params["wte"][0].zero_()
    return params


def forward(cfg, p, inputs, pad, targets, Tb):
    """p: float64 tensors; inputs (NI, B, Tb) long; returns (hidden, loss)."""
    B = pad.shape[0]
    C, NH, L, T = cfg["C"], cfg["NH"], cfg["L"], cfg["T"]
    hs = C // NH
    items = inputs[0]
    x = p["wte"][items]
    if cfg["scale_emb"]:
        x = x * math.sqrt(C)
    if cfg.get("pos", 0) == 1:
        pos = (torch.arange(Tb).unsqueeze(0) - pad.unsqueeze(1)).clamp(min=0)  # (B, Tb)
        x = x + p["wpe"][pos]
    else:
        pos = torch.arange(T - Tb, T)
        x = x + p["wpe"][pos].unsqueeze(0)
    slot = 1
    for i, (name, _) in enumerate(FEATURES):
        if cfg["features"] & (1 << i):
            x = x + p[name][inputs[slot]]
            slot += 1

    t_idx = torch.arange(Tb)
    real = t_idx.unsqueeze(0) >= pad.unsqueeze(1)                        # (B, Tb)
    causal = t_idx.unsqueeze(1) >= t_idx.unsqueeze(0)                    # (Tq, Tk)
    allowed = causal.unsqueeze(0) & real.unsqueeze(1)                    # (B, Tq, Tk)
    # a padding query has no visible key: let it see itself, then zero it
    allowed = allowed | torch.eye(Tb, dtype=torch.bool).unsqueeze(0)
    qmask = real.to(x.dtype).unsqueeze(1).unsqueeze(-1)                  # (B, 1, Tq, 1)

    def ln(v, w, b):
        return torch.nn.functional.layer_norm(v, (C,), w, b, eps=1e-5)

    for l in range(L):
        h = ln(x, p["ln1w"][l], p["ln1b"][l])
        if cfg["block"] == 1:
            # SASRec's wiring: queries from ln1(x), keys and values from x
            q = h @ p["qkvw"][l][:C].T + p["qkvb"][l][:C]
            k, v = (x @ p["qkvw"][l][C:].T + p["qkvb"][l][C:]).split(C, dim=-1)
        else:
            qkv = h @ p["qkvw"][l].T + p["qkvb"][l]
            q, k, v = qkv.split(C, dim=-1)
        q = q.view(B, Tb, NH, hs).transpose(1, 2)
        k = k.view(B, Tb, NH, hs).transpose(1, 2)
        v = v.view(B, Tb, NH, hs).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)
        att = att.masked_fill(~allowed.unsqueeze(1), float("-inf"))
        att = torch.softmax(att, dim=-1)
        y = (att @ v) * qmask
        y = y.transpose(1, 2).contiguous().view(B, Tb, C)
        x = (h if cfg["block"] == 1 else x) + y @ p["attprojw"][l].T + p["attprojb"][l]
        h = ln(x, p["ln2w"][l], p["ln2b"][l])
        f = h @ p["fcw"][l].T + p["fcb"][l]
        f = torch.nn.functional.gelu(f, approximate="tanh") if cfg["act"] == 1 else torch.relu(f)
        x = (h if cfg["block"] == 1 else x) + f @ p["fcprojw"][l].T + p["fcprojb"][l]
    hidden = ln(x, p["lnfw"], p["lnfb"])

    logits = hidden @ p["wte"].T                                         # (B, Tb, V)
    logits[..., 0] = float("-inf")
    flat_t = targets.reshape(-1)
    sel = flat_t != 0
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, cfg["V"])[sel], flat_t[sel])
    return hidden, loss


def make_case(cfg, B, Tb, pads, seed, lr, beta1, beta2, eps, wd):
    gen = torch.Generator().manual_seed(seed)
    V = cfg["V"]
    params32 = init_params(cfg, gen)
    NI = 1 + bin(cfg["features"]).count("1")
    pad = torch.tensor(pads, dtype=torch.long)
    inputs = torch.zeros((NI, B, Tb), dtype=torch.long)
    targets = torch.zeros((B, Tb), dtype=torch.long)
    inputs[0] = torch.randint(1, V, (B, Tb), generator=gen)
    slot = 1
    for i, (_, rows) in enumerate(FEATURES):
        if cfg["features"] & (1 << i):
            inputs[slot] = torch.randint(0, rows, (B, Tb), generator=gen)
            slot += 1
    for b in range(B):
        inputs[:, b, :pads[b]] = 0
        for t in range(pads[b], Tb):
            # the next item as target, a fresh one at the end, and a few holes
            targets[b, t] = inputs[0, b, t + 1] if t + 1 < Tb else torch.randint(1, V, (1,), generator=gen)[0]
        if Tb - pads[b] > 2:
            targets[b, pads[b] + 1] = 0

    p = {k: v.to(torch.float64).requires_grad_(True) for k, v in params32.items()}
    hidden, loss = forward(cfg, p, inputs, pad, targets, Tb)
    loss.backward()

    names = [n for n, _, _ in layout(cfg)]
    decay = {n: d for n, _, d in layout(cfg)}
    grads = {n: p[n].grad.detach().clone() for n in names}
    # clip at half the norm, so that the clipping path is exercised
    norm = math.sqrt(sum(float((g * g).sum()) for g in grads.values()))
    clip = 0.5 * norm
    coef = clip / (norm + 1e-6)
    # AdamW as torch.optim.AdamW; no decay on embeddings, layer norms, biases
    with torch.no_grad():
        q = {n: p[n].detach().clone().requires_grad_(True) for n in names}
        for n in names:
            q[n].grad = grads[n] * coef
        groups = [{"params": [q[n] for n in names if decay[n]], "weight_decay": wd},
                  {"params": [q[n] for n in names if not decay[n]], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=lr, betas=(beta1, beta2), eps=eps)
    opt.step()
    after = {n: q[n].detach() for n in names}

    return {
        "cfg": cfg, "B": B, "Tb": Tb, "NI": NI, "names": names,
        "params": params32, "inputs": inputs, "pad": pad, "targets": targets,
        "hidden": hidden.detach(), "loss": float(loss), "grads": grads, "after": after,
        "opt": (lr, beta1, beta2, eps, wd, clip),
    }


def f32(t):
    return t.detach().to(torch.float32).contiguous().reshape(-1).tolist()


def write_case(out, c):
    cfg = c["cfg"]
    nparams = sum(c["params"][n].numel() for n in c["names"])
    hdr = [cfg["V"], cfg["C"], cfg["NH"], cfg["L"], cfg["T"], cfg["F"], cfg["act"], cfg["features"],
           cfg["scale_emb"], c["B"], c["Tb"], c["NI"], nparams, cfg["block"], cfg.get("pos", 0), 0]
    out.write(struct.pack("<16i", *hdr))
    lr, b1, b2, eps, wd, clip = c["opt"]
    out.write(struct.pack("<8f", lr, b1, b2, eps, wd, clip, c["loss"], 0.0))
    for src in ("params",):
        for n in c["names"]:
            v = f32(c[src][n])
            out.write(struct.pack("<%df" % len(v), *v))
    for t in (c["inputs"], c["pad"], c["targets"]):
        v = t.to(torch.int32).reshape(-1).tolist()
        out.write(struct.pack("<%di" % len(v), *v))
    v = f32(c["hidden"])
    out.write(struct.pack("<%df" % len(v), *v))
    for src in ("grads", "after"):
        for n in c["names"]:
            v = f32(c[src][n])
            out.write(struct.pack("<%df" % len(v), *v))


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "tests/data/seqrec_ref.bin"
    torch.manual_seed(0)
    cases = [
        # GELU, two input features, SASRec's embedding scale, a full-length batch
        make_case({"V": 23, "C": 16, "NH": 2, "L": 2, "T": 8, "F": 24, "act": 1,
                   "features": 0b11, "scale_emb": 1, "block": 0},
                  B=3, Tb=8, pads=[0, 3, 5], seed=1234,
                  lr=1e-2, beta1=0.9, beta2=0.98, eps=1e-3, wd=0.1),
        # ReLU, item ids only, no scale, a batch shorter than T with an empty row
        make_case({"V": 19, "C": 12, "NH": 3, "L": 2, "T": 8, "F": 12, "act": 0,
                   "features": 0, "scale_emb": 0, "block": 0},
                  B=3, Tb=6, pads=[2, 0, 6], seed=99,
                  lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-3, wd=0.05),
        # SASRec's block wiring, ReLU, the action feature, SASRec's scale,
        # positions from each row's first event (SASRec+)
        make_case({"V": 17, "C": 8, "NH": 1, "L": 2, "T": 7, "F": 8, "act": 0,
                   "features": 0b1, "scale_emb": 1, "block": 1, "pos": 1},
                  B=3, Tb=7, pads=[0, 4, 1], seed=7,
                  lr=1e-2, beta1=0.9, beta2=0.98, eps=1e-3, wd=0.0),
    ]
    with open(path, "wb") as out:
        out.write(MAGIC)
        out.write(struct.pack("<i", len(cases)))
        for c in cases:
            write_case(out, c)
    for i, c in enumerate(cases):
        print("case %d: loss %.6f, grad-norm clip %.6f" % (i, c["loss"], c["opt"][5]))
    print("wrote", path)


if __name__ == "__main__":
    main()
