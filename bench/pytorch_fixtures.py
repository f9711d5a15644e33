"""PyTorch parity fixtures (run by gpu/gpu-check.sh on the GPU machine; on a machine without
CUDA it runs PyTorch's CPU kernels instead, to rehearse the script and cross-check the fixtures).

For each checkpoint written by rnnlm (LanguageModel.save) in FOLDER/<name>.safetensors, with a
batch in FOLDER/<name>.batch.safetensors (input ids, targets, lengths, h0, c0 — time-major), both
made by gpu/gpu-check.ts (fixtureInputs), this loads the weights into PyTorch's
word_language_model-style model (nn.Embedding + nn.LSTM / nn.GRU / nn.RNN, cuDNN, TF32 off, then
nn.Linear or, when config.softmax.type is 'adaptive', nn.AdaptiveLogSoftmaxWithLoss) with
load_state_dict(strict=True), runs the batch (pack_padded_sequence for the lengths), and writes
FOLDER/<name>.fixture.safetensors: the weights, the batch, the loss (mean NLL over targets != 0)
and every gradient (grad.<name>, grad.h0, grad.c0); for the adaptive softmax also `logprob`,
decoder.log_prob of every position [T * B, V]. test/reference/pytorch-fixtures.test.ts checks the
CPU backend against them in CI.

Usage: python3 bench/pytorch_fixtures.py FOLDER [NAME ...]   (default: every fixture below)

The names: lstm, gru, rnn_tanh, rnn_relu (full softmax) and adaptive (an LSTM with cutoffs [8, 20],
divValue 2, headBias true). The four cell fixtures were made with cuDNN on the GPU machine. The
adaptive one was first made on a machine without CUDA, with Debian's python3-torch 1.13 (PyTorch's
CPU kernels) and no safetensors package (the fallback reader and writer below):
    OUT=/tmp/fx node --import tsx gpu/gpu-check.ts   # dry mode: writes only the fixture inputs
    /usr/bin/python3 bench/pytorch_fixtures.py /tmp/fx/fixtures adaptive
    cp /tmp/fx/fixtures/adaptive.fixture.safetensors test/reference/fixtures/
gpu/gpu-check.sh regenerates all five on the GPU machine (fixtures.tar, unpacked by gpu-results.ts).
"""
import json
import struct
import sys

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

try:
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file
except ImportError:  # e.g. Debian's python3-torch, which has no safetensors package
    safe_open = None

NAMES = ["lstm", "gru", "rnn_tanh", "rnn_relu", "adaptive"]

# The fallback's element types: those rnnlm writes and this script adds.
DTYPES = {"F32": torch.float32, "F64": torch.float64, "I32": torch.int32, "I64": torch.int64, "U8": torch.uint8}


def read(path, device):
    """(tensors, metadata) of a safetensors file."""
    if safe_open is not None:
        with safe_open(path, "pt") as f:
            metadata = f.metadata() or {}
        return load_file(path, device=device), metadata
    # The format: u64 little-endian header size N, N bytes of JSON, then the data region.
    assert sys.byteorder == "little", "the fallback reader assumes a little-endian machine"
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    metadata = header.pop("__metadata__", {})
    data = blob[8 + n :]
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        dtype = DTYPES[entry["dtype"]]
        flat = torch.frombuffer(bytearray(data[begin:end]), dtype=dtype) if end > begin else torch.empty(0, dtype=dtype)
        tensors[name] = flat.reshape(entry["shape"]).to(device)
    return tensors, metadata


def write(tensors, path, metadata):
    """A safetensors file of CPU tensors, with string metadata."""
    if safe_open is not None:
        save_file(tensors, path, metadata=metadata)
        return
    assert sys.byteorder == "little", "the fallback writer assumes a little-endian machine"
    names = {dtype: name for name, dtype in DTYPES.items()}
    header, chunks, offset = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        raw = t.numpy().tobytes()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data region starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


class RNNModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        V, E, H, L = cfg["vocabSize"], cfg["embeddingSize"], cfg["hiddenSize"], cfg["layers"]
        self.encoder = nn.Embedding(V, E)
        cell = cfg["cell"]
        if cell == "lstm":
            self.rnn = nn.LSTM(E, H, L)
        elif cell == "gru":
            self.rnn = nn.GRU(E, H, L)
        else:
            self.rnn = nn.RNN(E, H, L, nonlinearity="tanh" if cell == "rnn_tanh" else "relu")
        sm = cfg.get("softmax", {"type": "full"})  # absent in checkpoints older than the option
        self.adaptive = sm["type"] == "adaptive"
        if self.adaptive:
            self.decoder = nn.AdaptiveLogSoftmaxWithLoss(H, V, sm["cutoffs"], div_value=float(sm["divValue"]), head_bias=sm["headBias"])
        else:
            self.decoder = nn.Linear(H, V)
        self.cell = cell


def run(folder, name):
    path = f"{folder}/{name}.safetensors"
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    state, metadata = read(path, dev)
    cfg = json.loads(metadata["config"])
    cell = cfg["cell"]
    model = RNNModel(cfg).to(dev)
    model.load_state_dict(state, strict=True)
    b, _ = read(f"{folder}/{name}.batch.safetensors", dev)
    ids, targets, lengths = b["ids"].long(), b["targets"].long(), b["lengths"].long().cpu()
    h0 = b["h0"].clone().requires_grad_(True)
    c0 = b["c0"].clone().requires_grad_(True)
    emb = model.encoder(ids)
    packed = pack_padded_sequence(emb, lengths, enforce_sorted=False)
    out, _ = model.rnn(packed, (h0, c0) if cell == "lstm" else h0)
    y, _ = pad_packed_sequence(out, total_length=ids.shape[0])
    fixture = {}
    if model.adaptive:
        y, t = y.reshape(-1, y.shape[-1]), targets.reshape(-1)
        counted = t != 0
        loss = model.decoder(y[counted], t[counted]).loss
        with torch.no_grad():
            logprob = model.decoder.log_prob(y)
        # The module's two paths (forward: head and target cluster only; log_prob: everything) agree.
        other = -logprob[counted].gather(1, t[counted].unsqueeze(1)).mean()
        if abs(other.item() - loss.item()) > 1e-5 * abs(loss.item()):
            sys.exit(f"fixture {name}: forward's loss {loss.item()} but log_prob gives {other.item()}")
        fixture["logprob"] = logprob.cpu().contiguous()
    else:
        logits = model.decoder(y)
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=0)
    loss.backward()
    fixture.update({f"weight.{k}": v.detach().float().cpu().contiguous() for k, v in state.items()})
    fixture.update({f"batch.{k}": v.cpu().contiguous() for k, v in b.items()})
    fixture["loss"] = loss.detach().reshape(1).cpu()
    for pname, p in model.named_parameters():
        fixture[f"grad.{pname}"] = p.grad.detach().cpu().contiguous()
    fixture["grad.h0"] = h0.grad.detach().cpu().contiguous()
    if cell == "lstm":
        fixture["grad.c0"] = c0.grad.detach().cpu().contiguous()
    meta = {"config": json.dumps(cfg), "torch": torch.__version__, "cudnn": str(torch.backends.cudnn.version()),
            "device": torch.cuda.get_device_name(0) if dev == "cuda" else "cpu"}
    write(fixture, f"{folder}/{name}.fixture.safetensors", meta)
    print(f"fixture {name}: loss {loss.item():.6f}")


def main():
    folder = sys.argv[1]
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    for name in sys.argv[2:] or NAMES:
        run(folder, name)


if __name__ == "__main__":
    main()
