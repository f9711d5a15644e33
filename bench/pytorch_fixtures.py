"""PyTorch parity fixtures (run by gpu/gpu-check.sh on the GPU machine; on a machine without
CUDA it runs PyTorch's CPU kernels instead, to rehearse the script and cross-check the fixtures).

For each checkpoint written by rnnlm (LanguageModel.save) in FOLDER/<cell>.safetensors, with a
batch in FOLDER/<cell>.batch.safetensors (input ids, targets, lengths, h0, c0 — time-major), this
loads the weights into PyTorch's word_language_model-style model (nn.Embedding + nn.LSTM / nn.GRU
/ nn.RNN + nn.Linear, cuDNN, TF32 off) with load_state_dict(strict=True), runs the batch
(pack_padded_sequence for the lengths), and writes FOLDER/<cell>.fixture.safetensors: the
weights, the batch, the loss (mean NLL over targets != 0) and every gradient (grad.<name>,
grad.h0, grad.c0), which test/reference/pytorch-fixtures.test.ts checks the CPU backend against in CI."""
import json
import sys

import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


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
        self.decoder = nn.Linear(H, V)
        self.cell = cell


def run(folder, cell):
    from safetensors import safe_open

    path = f"{folder}/{cell}.safetensors"
    with safe_open(path, "pt") as f:
        cfg = json.loads(f.metadata()["config"])
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    model = RNNModel(cfg).to(dev)
    state = load_file(path, device=dev)
    model.load_state_dict(state, strict=True)
    b = load_file(f"{folder}/{cell}.batch.safetensors", device=dev)
    ids, targets, lengths = b["ids"].long(), b["targets"].long(), b["lengths"].long().cpu()
    h0 = b["h0"].clone().requires_grad_(True)
    c0 = b["c0"].clone().requires_grad_(True)
    emb = model.encoder(ids)
    packed = pack_padded_sequence(emb, lengths, enforce_sorted=False)
    out, _ = model.rnn(packed, (h0, c0) if cell == "lstm" else h0)
    y, _ = pad_packed_sequence(out, total_length=ids.shape[0])
    logits = model.decoder(y)
    loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=0)
    loss.backward()
    fixture = {f"weight.{k}": v.detach().float().cpu().contiguous() for k, v in state.items()}
    fixture.update({f"batch.{k}": v.cpu().contiguous() for k, v in b.items()})
    fixture["loss"] = loss.detach().reshape(1).cpu()
    for name, p in model.named_parameters():
        fixture[f"grad.{name}"] = p.grad.detach().cpu().contiguous()
    fixture["grad.h0"] = h0.grad.detach().cpu().contiguous()
    if cell == "lstm":
        fixture["grad.c0"] = c0.grad.detach().cpu().contiguous()
    meta = {"config": json.dumps(cfg), "torch": torch.__version__, "cudnn": str(torch.backends.cudnn.version()),
            "device": torch.cuda.get_device_name(0) if dev == "cuda" else "cpu"}
    save_file(fixture, f"{folder}/{cell}.fixture.safetensors", metadata=meta)
    print(f"fixture {cell}: loss {loss.item():.6f}")


def main():
    folder = sys.argv[1]
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    for cell in ["lstm", "gru", "rnn_tanh", "rnn_relu"]:
        run(folder, cell)


if __name__ == "__main__":
    main()
