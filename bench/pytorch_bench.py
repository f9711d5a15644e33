"""PyTorch peer for the GPU benchmarks: the same models as rnnlm (Embedding + nn.LSTM / nn.GRU
+ Linear + cross-entropy + Adam, word_language_model style), the DESIGN.md configurations,
training tokens/s and token-by-token generation tokens/s, peak device memory; JSON out.
Run by scripts/gpu-check.sh on the GPU machine."""
import argparse
import json
import time

import torch
import torch.nn as nn

CONFIGS = [
    ("zaremba-small", "lstm", 2, 200, 200, 20, 20, 10000),
    ("zaremba-medium", "lstm", 2, 650, 650, 20, 35, 10000),
    ("zaremba-large", "lstm", 2, 1500, 1500, 20, 35, 10000),
    ("keras-gru", "gru", 1, 1024, 256, 64, 30, 303),
    ("char-lstm", "lstm", 3, 512, 64, 64, 128, 65),
]


class RNNModel(nn.Module):
    def __init__(self, cell, vocab, emb, hidden, layers):
        super().__init__()
        self.encoder = nn.Embedding(vocab, emb)
        self.rnn = (nn.LSTM if cell == "lstm" else nn.GRU)(emb, hidden, layers)
        self.decoder = nn.Linear(hidden, vocab)

    def forward(self, x, h):
        y, h = self.rnn(self.encoder(x), h)
        return self.decoder(y), h


def detach(h):
    return tuple(t.detach() for t in h) if isinstance(h, tuple) else h.detach()


def zeros(cell, layers, batch, hidden, dev):
    z = torch.zeros(layers, batch, hidden, device=dev)
    return (z, z.clone()) if cell == "lstm" else z


def run(name, cell, layers, hidden, emb, batch, seq, vocab, seconds, dev):
    torch.manual_seed(1)
    model = RNNModel(cell, vocab, emb, hidden, layers).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.randint(1, vocab, (seq, batch), device=dev)
    t = torch.randint(1, vocab, (seq, batch), device=dev)
    h = zeros(cell, layers, batch, hidden, dev)

    def step(h):
        opt.zero_grad(set_to_none=True)
        out, h = model(x, detach(h))
        loss = loss_fn(out.view(-1, vocab), t.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        opt.step()
        return h, loss

    for _ in range(5):
        h, loss = step(h)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(10):
            h, loss = step(h)
        loss.item()
        steps += 10
    train = steps * batch * seq / (time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated()

    model.eval()
    with torch.no_grad():
        g = zeros(cell, layers, 1, hidden, dev)
        tok = torch.ones(1, 1, dtype=torch.long, device=dev)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 2:
            out, g = model(tok, g)
            tok = out[-1].argmax(-1, keepdim=True)
            tok.item()  # one small copy per token, as ours
            n += 1
        gen = n / (time.perf_counter() - t0)
    print(f"pytorch {name}: train {train:.0f} tokens/s, generate {gen:.0f} tokens/s, peak {peak / 2**20:.0f} MiB")
    return {"config": name, "trainTokensPerSecond": train, "generateTokensPerSecond": gen, "peakMemoryBytes": peak}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default="pytorch.json")
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device("cuda")
    rows = [run(*c, seconds=args.seconds, dev=dev) for c in CONFIGS]
    info = {
        "peer": "pytorch-eager",
        "torch": torch.__version__,
        "cudnn": torch.backends.cudnn.version(),
        "device": torch.cuda.get_device_name(0),
        "results": rows,
    }
    with open(args.json, "w") as f:
        json.dump(info, f, indent=2)


if __name__ == "__main__":
    main()
