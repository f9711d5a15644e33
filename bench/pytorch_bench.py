"""PyTorch as a benchmark peer, on the GPU machine (run by gpu/gpu-check.sh) and on the CPU
(scripts/bench-cpu.sh, with `--device cpu`): the same models
as rnnlm (nn.Embedding + nn.LSTM / nn.GRU + nn.Linear + cross-entropy + Adam + global-norm
clipping at 5, word_language_model style, time-major), the configurations of lib/bench/configs.ts, TF32 off.

Two peers, written as runs in rnnlm's bench report format (`rnnlm bench --with FILE` puts them
beside ours in one report):
  pytorch-eager      training step by step; generation token by token as word_language_model's
                     generate.py does it: sample, read the id (one sync per token);
  pytorch-cudagraph  the whole training step (forward, backward, clipping, Adam with
                     capturable=True) captured once and replayed; generation: 64 token steps
                     (embedding, RNN, linear, softmax, multinomial) captured as one graph, the
                     ids read once per 64 tokens — the fastest PyTorch we know how to write.
  pytorch-cpu        (--device cpu) the eager peer on the CPU, all cores, each configuration in its
                     own process so that its peak RSS is its own, as our bench does.
  pytorch-amp-bf16-cudagraph, pytorch-amp-fp16-cudagraph  (--amp) the cudagraph peer under
                     torch.autocast (bf16 / fp16: cuDNN's RNN and the linear layer in half, the
                     loss in float32), fp16 with a static loss scale of 2^12 (GradScaler's dynamic
                     scale reads found_inf on the host, which a captured graph cannot): rnnlm's
                     bf16 / fp16 against the fastest mixed-precision PyTorch we know how to write.
"""
import contextlib
import argparse
import json
import multiprocessing
import os
import platform
import resource
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
CLIP = 5.0
GRAPH_TOKENS = 64


class RNNModel(nn.Module):
    def __init__(self, cell, vocab, emb, hidden, layers):
        super().__init__()
        self.encoder = nn.Embedding(vocab, emb)
        self.rnn = (nn.LSTM if cell == "lstm" else nn.GRU)(emb, hidden, layers)
        self.decoder = nn.Linear(hidden, vocab)

    def forward(self, x, h):
        y, h = self.rnn(self.encoder(x), h)
        return self.decoder(y), h


def states(cell, layers, batch, hidden, dev):
    z = torch.zeros(layers, batch, hidden, device=dev)
    return (z, z.clone()) if cell == "lstm" else z


def as_tuple(h):
    return h if isinstance(h, tuple) else (h,)


def timed(fn, seconds, unit):
    """Calls fn() (which does `unit` items and syncs) until `seconds` have passed; items/s."""
    n, t0 = 0, time.perf_counter()
    while n == 0 or time.perf_counter() - t0 < seconds:
        fn()
        n += unit
    dt = time.perf_counter() - t0
    return n, dt


def eager(cfg, seconds, dev):
    name, cell, L, H, E, B, T, V = cfg
    torch.manual_seed(1)
    model = RNNModel(cell, V, E, H, L).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.randint(4, V, (T, B), device=dev)
    t = torch.randint(4, V, (T, B), device=dev)
    h = [states(cell, L, B, H, dev)]

    def step():
        opt.zero_grad(set_to_none=True)
        hin = tuple(s.detach() for s in as_tuple(h[0]))
        out, h[0] = model(x, hin if cell == "lstm" else hin[0])
        loss = loss_fn(out.view(-1, V), t.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
        return loss

    last = [0.0]

    def ten():
        for _ in range(10):
            loss = step()
        last[0] = loss.item()  # the loss read once per 10 steps, as our fit's progress does

    first = step().item()  # checked by `rnnlm bench --with`: a fresh model starts near ln(V - 4)
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    ten()
    steps, dt = timed(ten, seconds, 10)
    train = {"steps": steps, "seconds": dt, "tokensPerSecond": steps * B * T / dt, "firstLoss": first, "loss": last[0]}

    model.eval()
    with torch.no_grad():
        g = [states(cell, L, 1, H, dev)]
        tok = torch.full((1, 1), 5, dtype=torch.long, device=dev)

        def one():
            nonlocal tok
            out, g[0] = model(tok, g[0])
            probs = torch.softmax(out[-1, 0], -1)
            idx = torch.multinomial(probs, 1)
            tok = idx.view(1, 1)
            idx.item()  # generate.py reads each sampled word to write it out

        for _ in range(20):
            one()
        n, gdt = timed(one, seconds / 2, 1)
    return train, {"tokens": n, "seconds": gdt, "tokensPerSecond": n / gdt}


AMP_SCALE = 2.0**12


def amp_cudagraph(dtype):
    def run(cfg, seconds, dev):
        return cudagraph(cfg, seconds, dev, dtype)

    return run


def cudagraph(cfg, seconds, dev, amp=None):
    name, cell, L, H, E, B, T, V = cfg
    autocast = (lambda: torch.autocast("cuda", dtype=amp)) if amp is not None else contextlib.nullcontext
    scale = AMP_SCALE if amp == torch.float16 else 1.0
    torch.manual_seed(1)
    model = RNNModel(cell, V, E, H, L).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, capturable=True)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.randint(4, V, (T, B), device=dev)
    t = torch.randint(4, V, (T, B), device=dev)
    h = as_tuple(states(cell, L, B, H, dev))

    def body():
        with autocast():
            out, hn = model(x, h if cell == "lstm" else h[0])
        loss = loss_fn(out.view(-1, V).float(), t.view(-1))
        if scale != 1.0:
            (loss * scale).backward()
            torch._foreach_mul_([p.grad for p in model.parameters()], 1.0 / scale)
        else:
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP, foreach=True)
        opt.step()
        for s, n in zip(h, as_tuple(hn)):
            s.copy_(n.detach())  # truncated BPTT: the state carried into the next replay
        return loss

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for i in range(3):
            opt.zero_grad(set_to_none=True)
            loss = body()
            if i == 0:
                first = loss.item()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        loss = body()

    def ten():
        for _ in range(10):
            graph.replay()
        loss.item()

    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    ten()
    steps, dt = timed(ten, seconds, 10)
    train = {"steps": steps, "seconds": dt, "tokensPerSecond": steps * B * T / dt, "firstLoss": first, "loss": loss.item()}

    model.eval()
    with torch.no_grad():
        g = as_tuple(states(cell, L, 1, H, dev))
        tok = torch.full((1, 1), 5, dtype=torch.long, device=dev)
        ids = torch.zeros(GRAPH_TOKENS, dtype=torch.long, device=dev)

        def tokens():
            for i in range(GRAPH_TOKENS):
                with autocast():
                    out, gn = model(tok, g if cell == "lstm" else g[0])
                idx = torch.multinomial(torch.softmax(out[-1, 0].float(), -1), 1)
                tok.copy_(idx.view(1, 1))
                ids[i : i + 1].copy_(idx)
                for s, n in zip(g, as_tuple(gn)):
                    s.copy_(n)

        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            tokens()
        torch.cuda.current_stream().wait_stream(side)
        ggraph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(ggraph):
            tokens()

        def chunk():
            ggraph.replay()
            ids.cpu()

        chunk()
        n, gdt = timed(chunk, seconds / 2, GRAPH_TOKENS)
    return train, {"tokens": n, "seconds": gdt, "tokensPerSecond": n / gdt}


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            return next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "cpu"


def loaded_blas():
    """The BLAS libraries this process has mapped (Debian's torch links whichever libblas.so.3 is chosen)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {os.path.basename(l.split()[-1]) for l in f if "blas" in l or "mkl" in l}
        return ", ".join(sorted(libs)) or "none found"
    except OSError:
        return "unknown"


def cpu_run(cfg, seconds, threads):
    """One configuration in a fresh process (spawned): its own peak RSS, as our worker reports."""
    torch.set_num_threads(threads)
    train, gen = eager(cfg, seconds, torch.device("cpu"))
    return train, gen, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default="pytorch.json")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    ap.add_argument("--configs", help="comma-separated configuration names (default: all)")
    ap.add_argument("--threads", type=int, default=1, help="torch's intra-op threads on the CPU (default 1: see below)")
    ap.add_argument("--amp", action="store_true", help="the mixed-precision cudagraph peers instead (bf16, fp16)")
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if args.device == "cuda":
        dev = torch.device("cuda")
        info = {"torch": torch.__version__, "cudnn": torch.backends.cudnn.version(), "device": torch.cuda.get_device_name(0)}
        peers = (("pytorch-eager", eager), ("pytorch-cudagraph", cudagraph))
        if args.amp:
            peers = (("pytorch-amp-bf16-cudagraph", amp_cudagraph(torch.bfloat16)), ("pytorch-amp-fp16-cudagraph", amp_cudagraph(torch.float16)))
    else:
        # The GEMMs run in the BLAS on every core (its own threads) whatever torch's thread count.
        # On the 2-core machine, torch threads 1 + OpenBLAS 2 was the fastest setting (zaremba-small
        # 3,500-3,900 tokens/s); 2 + 2 oversubscribes the cores (880-1,300), 1 + 1 and 2 + 1 are slower.
        blas = loaded_blas()
        info = {"torch": torch.__version__, "device": cpu_model(), "blas": blas, "torchThreads": args.threads,
                "blasThreads": os.environ.get("OPENBLAS_NUM_THREADS", f"default ({len(os.sched_getaffinity(0))} cores)"),
                "mkldnn": torch.backends.mkldnn.is_available()}
        peers = (("pytorch-cpu", None),)
    names = args.configs.split(",") if args.configs else [c[0] for c in CONFIGS]
    unknown = set(names) - {c[0] for c in CONFIGS}
    if unknown:
        ap.error(f"unknown configuration(s): {', '.join(sorted(unknown))}")
    runs = []
    for cfg in (c for c in CONFIGS if c[0] in names):
        for peer, fn in peers:
            notes = [f"generation: {GRAPH_TOKENS} token steps per graph replay, ids read once per replay"] if fn is not eager else []
            if peer.startswith("pytorch-amp-fp16"):
                notes.append(f"static loss scale {AMP_SCALE:g}")
            run = {"peer": peer, "config": cfg[0], "status": "ok", "info": info, "notes": notes}
            try:
                if args.device == "cuda":
                    train, gen = fn(cfg, args.seconds, dev)
                    run.update(train=train, generate=gen, peakDeviceMiB=torch.cuda.max_memory_allocated() / 2**20)
                else:
                    with multiprocessing.get_context("spawn").Pool(1) as pool:
                        train, gen, rss = pool.apply(cpu_run, (cfg, args.seconds, args.threads))
                    run.update(train=train, generate=gen, peakRssMiB=rss)
                print(f"{peer} {cfg[0]}: train {train['tokensPerSecond']:.0f} tokens/s, generate {gen['tokensPerSecond']:.0f} tokens/s")
            except Exception as e:  # a peer that cannot run this configuration says why
                run.update(status="unavailable", reason=f"{type(e).__name__}: {e}"[:500])
                print(f"{peer} {cfg[0]}: {run['reason']}")
            runs.append(run)
            if args.device == "cuda":
                torch.cuda.empty_cache()
    with open(args.json, "w") as f:
        json.dump({"kind": "pytorch-bench", "runs": runs}, f, indent=2)


if __name__ == "__main__":
    main()
