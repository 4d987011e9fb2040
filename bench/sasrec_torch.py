#!/usr/bin/python3
"""sasrec_torch.py: the PyTorch side of bench/run train-speed.

The same model recd trains (SASRec as SASRec+ trains it: pre-LN causal
transformer, item embeddings shared with the output layer, learned positions,
full softmax cross-entropy over the catalog on every non-padding position),
timed for one or more epochs on a "user item" file, one training sequence per
user per epoch (leave-one-out: the last two items are held out), left-padded
to maxlen, batches shuffled.  Run it with Debian's /usr/bin/python3
(python3-torch); it installs nothing.

Prints a human line per epoch and, last, one JSON object.
"""
import argparse
import json
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def load_sequences(path):
    seqs = {}
    items = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 2:
                continue
            u, i = parts[0], parts[1]
            iid = items.setdefault(i, len(items) + 1)  # 0 is padding
            seqs.setdefault(u, []).append(iid)
    return [s for s in seqs.values()], len(items) + 1


class Block(nn.Module):
    def __init__(self, d, heads, dropout):
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, d)
        self.fc2 = nn.Linear(d, d)
        self.heads = heads
        self.drop = nn.Dropout(dropout)

    def forward(self, x, mask):
        B, T, C = x.shape
        h = self.ln1(x)
        q, k, v = self.qkv(h).split(C, dim=2)
        q = q.view(B, T, self.heads, C // self.heads).transpose(1, 2)
        k = k.view(B, T, self.heads, C // self.heads).transpose(1, 2)
        v = v.view(B, T, self.heads, C // self.heads).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(C // self.heads)
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        att = torch.nan_to_num(att)  # padding query rows see no key
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + self.drop(self.proj(y))
        x = x + self.drop(self.fc2(F.relu(self.fc1(self.ln2(x)))))
        return x


class SASRec(nn.Module):
    def __init__(self, V, d, blocks, heads, maxlen, dropout):
        super().__init__()
        self.item = nn.Embedding(V, d, padding_idx=0)
        self.pos = nn.Embedding(maxlen, d)
        self.blocks = nn.ModuleList(Block(d, heads, dropout) for _ in range(blocks))
        self.lnf = nn.LayerNorm(d)
        self.drop = nn.Dropout(dropout)
        self.d = d
        # Small embeddings, as SASRec implementations initialise them: with
        # nn.Embedding's N(0, 1) the first logits are far too large.
        nn.init.normal_(self.item.weight, std=0.02)
        nn.init.normal_(self.pos.weight, std=0.02)

    def forward(self, seq):
        B, T = seq.shape
        x = self.item(seq) * math.sqrt(self.d) + self.pos.weight[:T]
        x = self.drop(x)
        real = seq > 0
        causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
        mask = (causal[None, :, :] & real[:, None, :])[:, None, :, :]
        for blk in self.blocks:
            x = blk(x, mask)
        return self.lnf(x)


def batches(seqs, maxlen, batch, gen):
    order = torch.randperm(len(seqs), generator=gen).tolist()
    for s in range(0, len(order), batch):
        idx = order[s:s + batch]
        inp = torch.zeros(len(idx), maxlen, dtype=torch.long)
        tgt = torch.zeros(len(idx), maxlen, dtype=torch.long)
        for r, u in enumerate(idx):
            train = seqs[u][:-2]  # leave-one-out: validation and test held out
            x, y = train[:-1][-maxlen:], train[1:][-maxlen:]
            if x:
                inp[r, maxlen - len(x):] = torch.tensor(x)
                tgt[r, maxlen - len(y):] = torch.tensor(y)
        yield inp, tgt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--d", type=int, default=50)
    ap.add_argument("--blocks", type=int, default=2)
    ap.add_argument("--heads", type=int, default=1)
    ap.add_argument("--maxlen", type=int, default=200)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    seqs, V = load_sequences(a.data)
    model = SASRec(V, a.d, a.blocks, a.heads, a.maxlen, a.dropout)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, betas=(0.9, 0.98))
    gen = torch.Generator().manual_seed(a.seed)
    times, losses = [], []
    for epoch in range(a.epochs):
        model.train()
        t0 = time.perf_counter()
        total, n = 0.0, 0
        for inp, tgt in batches(seqs, a.maxlen, a.batch, gen):
            keep = tgt > 0
            h = model(inp)[keep]                     # only rows with a target
            logits = h @ model.item.weight[1:].T     # padding row excluded
            loss = F.cross_entropy(logits, tgt[keep] - 1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * int(keep.sum())
            n += int(keep.sum())
        dt = time.perf_counter() - t0
        times.append(dt)
        losses.append(total / max(n, 1))
        print(f"torch epoch {epoch + 1}: {dt:.1f} s, loss {losses[-1]:.4f}, {n} target positions", flush=True)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times.sort()
    print(json.dumps({"torch_s_per_epoch": times[len(times) // 2], "epochs": a.epochs,
                      "threads": a.threads, "loss": losses[-1], "rss_mb": round(rss_mb, 1),
                      "torch_version": torch.__version__}))


if __name__ == "__main__":
    sys.exit(main())
