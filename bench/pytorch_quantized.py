"""PyTorch's dynamic quantization: the peer of rnnlm's int8 inference (issue 25's benchmark).

PyTorch's own answer for compact LSTM inference is `torch.quantization.quantize_dynamic` (its
word-language-model dynamic quantization tutorial): the recurrent layer and the output Linear keep
int8 weights and quantize their activations on the fly. This script loads an rnnlm checkpoint into
word_language_model's RNNModel (nn.Embedding -> nn.LSTM / nn.GRU -> nn.Linear, time-major), then
measures, under torch.inference_mode() with torch.set_num_threads(--threads), the float32 model
and its int8 copy for each requested quantized engine (torch.backends.quantized.engine; an engine
this build lacks, or one that fails, is reported with its reason, not fatal):
  generate     batch-1 sampling token by token as generate.py does it (forward one token with the
               carried state, softmax, torch.multinomial, feed it back), after the prompt and a
               short warm-up, for --seconds: tokens/s;
  predictNext  the prompt fed from the zero state, the top 5 next tokens with their probabilities:
               median and p90 latency over repeated calls for --seconds;
  evaluate     the whole evaluation text once, timed: tokens/s and perplexity. The text is scored
               as rnnlm's evaluate scores a stream, so that the float32 perplexity equals ours:
               --eval-batch columns that overlap by one token (column b is ids[b*c .. (b+1)*c],
               c = (N - 1) // B), windows of --eval-seq steps with the state carried, then the
               few ids after the last column by continuing its state in a batch of one — every
               one of the N - 1 targets counts. (PyTorch's batchify gives each column N // B ids
               and so leaves out each column's last target and the N mod B tail.)
  fileBytes    the size of torch.save(model.state_dict()).

Usage (bench/quantize.ts runs it, with the checkpoint and the id files it writes):
  python3 bench/pytorch_quantized.py --checkpoint M.safetensors --eval-ids E.i32 --prompt-ids P.i32
      [--seconds 5] [--threads 1] [--engines fbgemm,onednn,qnnpack,x86] [--eval-batch 20 --eval-seq 35]
M: a float32 checkpoint written by rnnlm (lstm or gru, full softmax); E, P: raw little-endian
int32 token ids. One JSON object on stdout; progress on stderr. Debian's python3-torch 1.13 has
the qnnpack and onednn engines (not fbgemm or x86); the two others are then reported as missing.
"""
import argparse
import array
import json
import math
import os
import sys
import tempfile
import time

TOP_K = 5
WARMUP_TOKENS = 20


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--checkpoint", required=True, help="a float32 .safetensors written by rnnlm")
    ap.add_argument("--eval-ids", required=True, help="the evaluation text: raw little-endian int32 ids")
    ap.add_argument("--prompt-ids", required=True, help="the prompt: raw little-endian int32 ids")
    ap.add_argument("--seconds", type=float, default=5.0, help="per timed measure (generate, predictNext)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--engines", default="fbgemm,onednn,qnnpack,x86", help="quantized engines to try, comma-separated")
    ap.add_argument("--eval-batch", type=int, default=20)
    ap.add_argument("--eval-seq", type=int, default=35)
    args = ap.parse_args()
    for name in ("threads", "eval_batch", "eval_seq"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    if not args.seconds > 0:
        ap.error("--seconds must be positive")
    return args


def refuse(what):
    sys.exit(f"pytorch_quantized: {what}")


def progress(line):
    print(line, file=sys.stderr, flush=True)


def read_ids(path, vocab):
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) % 4:
        refuse(f"{path}: {len(blob)} bytes is not a whole number of int32 ids")
    raw = array.array("i")
    assert raw.itemsize == 4
    raw.frombytes(blob)
    if sys.byteorder != "little":
        raw.byteswap()
    ids = torch.frombuffer(raw, dtype=torch.int32).long() if raw else torch.empty(0, dtype=torch.long)
    bad = ((ids < 0) | (ids >= vocab)).nonzero()
    if bad.numel():
        i = bad[0, 0].item()
        refuse(f"{path}: id {ids[i].item()} at index {i} is outside the vocabulary [0, {vocab})")
    return ids


def load_float_model(path):
    try:
        state, metadata = read(path, "cpu")
    except KeyError as e:  # the stdlib reader's table of element types
        refuse(f"{path}: element type {e} is not read here; save the checkpoint as float32")
    if "config" not in metadata:
        refuse(f"{path}: no config in the metadata; is this an rnnlm checkpoint?")
    cfg = json.loads(metadata["config"])
    if cfg["cell"] not in ("lstm", "gru"):
        refuse(f"{path}: cell '{cfg['cell']}' is not supported here (lstm and gru only)")
    softmax = cfg.get("softmax", {"type": "full"}).get("type")
    if softmax != "full":
        refuse(f"{path}: the {softmax} softmax is not supported here (the full softmax only)")
    model = RNNModel(cfg)
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    if cfg["tieWeights"]:
        model.decoder.weight = model.encoder.weight  # as word_language_model ties them
    return model.eval(), cfg


def forward(model, x, h):
    """Logits [T, B, V] and the new state of ids x [T, B] from state h (None: zeros)."""
    y, h = model.rnn(model.encoder(x), h)
    return model.decoder(y), h


def quantile(sorted_values, q):
    """Nearest rank, as bench/harness's latency figures."""
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def measure_generate(model, prompt, seconds):
    torch.manual_seed(1)
    out, h = forward(model, prompt.view(-1, 1), None)
    tok = torch.multinomial(torch.softmax(out[-1, 0], -1), 1).view(1, 1)

    def one():
        nonlocal tok, h
        out, h = forward(model, tok, h)
        tok = torch.multinomial(torch.softmax(out[-1, 0], -1), 1).view(1, 1)
        tok.item()  # generate.py reads each sampled word to write it out

    for _ in range(WARMUP_TOKENS):
        one()
    n, dt = timed(one, seconds, 1)
    return {"tokens": n, "seconds": dt, "tokensPerSecond": n / dt}


def measure_predict_next(model, prompt, seconds):
    x = prompt.view(-1, 1)

    def call():
        out, _ = forward(model, x, None)
        p, i = torch.softmax(out[-1, 0], -1).topk(TOP_K)
        return list(zip(i.tolist(), p.tolist()))

    call()  # warm-up
    times, t0 = [], time.perf_counter()
    while not times or time.perf_counter() - t0 < seconds:
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {"calls": len(times), "medianMs": quantile(times, 0.5), "p90Ms": quantile(times, 0.9)}


def measure_evaluate(model, ids, batch, seq):
    """rnnlm's stream scoring (the docstring's evaluate), timed."""
    n = ids.numel()
    B = min(batch, n - 1)
    stride = (n - 1) // B
    columns = torch.stack([ids[b * stride : b * stride + stride + 1] for b in range(B)], 1)
    nll = 0.0

    def run(data, h):
        nonlocal nll
        for start in range(0, data.shape[0] - 1, seq):
            x, y = data[start : start + seq], data[start + 1 : start + 1 + seq]
            x = x[: y.shape[0]]
            out, h = forward(model, x, h)
            nll += torch.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1), reduction="sum").item()
        return h

    t0 = time.perf_counter()
    h = run(columns, None)
    tail = ids[B * stride :]
    if tail.numel() >= 2:
        last = tuple(s[:, -1:].contiguous() for s in h) if isinstance(h, tuple) else h[:, -1:].contiguous()
        run(tail.view(-1, 1), last)
    dt = time.perf_counter() - t0
    return {"tokens": n - 1, "seconds": dt, "tokensPerSecond": (n - 1) / dt, "perplexity": math.exp(nll / (n - 1))}


def file_bytes(model):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.pt")
        torch.save(model.state_dict(), path)
        return os.path.getsize(path)


def measure(name, model, ids, prompt, args):
    entry = {"name": name, "status": "ok"}
    with torch.inference_mode():
        entry["evaluate"] = measure_evaluate(model, ids, args.eval_batch, args.eval_seq)
        entry["generate"] = measure_generate(model, prompt, args.seconds)
        entry["predictNext"] = measure_predict_next(model, prompt, args.seconds)
    entry["fileBytes"] = file_bytes(model)
    e, g, p = entry["evaluate"], entry["generate"], entry["predictNext"]
    progress(f"{name}: perplexity {e['perplexity']:.4f}, evaluate {e['tokensPerSecond']:.0f} tokens/s, "
             f"generate {g['tokensPerSecond']:.0f} tokens/s, predictNext median {p['medianMs']:.3f} ms, {entry['fileBytes']} bytes")
    return entry


def main():
    args = parse_args()
    # Debian's torch runs its float GEMMs in the system BLAS, whose threads torch.set_num_threads
    # does not set: --threads bounds them too (an explicit environment wins). It must be set
    # before the BLAS loads, so torch is imported here, into the module's globals.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads))
    # qnnpack's dynamic Linear logs "qnnpack incorrectly ignores reduce_range" through glog on
    # every call (thousands of lines on stderr, written inside the timed loops); errors still
    # show. Debian's torch needs both settings: c10 lowers glog's level to its own at load.
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
    global torch, nn, RNNModel, read, timed
    import torch
    import torch.nn as nn
    from pytorch_bench import loaded_blas, timed
    from pytorch_fixtures import RNNModel, read

    torch.set_num_threads(args.threads)
    model, cfg = load_float_model(args.checkpoint)
    ids = read_ids(args.eval_ids, cfg["vocabSize"])
    prompt = read_ids(args.prompt_ids, cfg["vocabSize"])
    if ids.numel() < 2:
        refuse(f"{args.eval_ids}: scoring needs at least 2 ids (got {ids.numel()})")
    if prompt.numel() < 1:
        refuse(f"{args.prompt_ids}: the prompt is empty")
    supported = list(torch.backends.quantized.supported_engines)
    report = {"torch": torch.__version__, "threads": args.threads,
              "blas": {"libraries": loaded_blas(), "threads": os.environ["OPENBLAS_NUM_THREADS"]},
              "engines": supported, "checkpoint": cfg, "models": [measure("float32", model, ids, prompt, args)]}
    rnn = type(model.rnn)  # nn.LSTM as the tutorial; a GRU model's nn.GRU likewise
    for engine in [e for e in args.engines.split(",") if e]:
        name = f"int8-{engine}"
        if engine not in supported:
            report["models"].append({"name": name, "status": "error", "error": f"not in this build's torch.backends.quantized.supported_engines {supported}"})
            progress(f"{name}: not supported by this build")
            continue
        try:
            torch.backends.quantized.engine = engine
            q = torch.quantization.quantize_dynamic(model, {rnn, nn.Linear}, dtype=torch.qint8)
            entry = measure(name, q, ids, prompt, args)
            entry["quantized"] = [rnn.__name__, "Linear"]
            report["models"].append(entry)
        except Exception as e:  # an engine that cannot run this model says why
            report["models"].append({"name": name, "status": "error", "error": f"{type(e).__name__}: {e}"[:500]})
            progress(f"{name}: {report['models'][-1]['error']}")
    json.dump(report, sys.stdout)
    print()


if __name__ == "__main__":
    main()
