// Recurrent-stack configuration and the canonical (PyTorch) parameter layout.
// Both backends describe weights with these shapes; the CPU backend also stores
// them in exactly this order, so its weight space *is* the canonical layout.
#pragma once
#include <cstdint>
#include <string>

#include "precision.h"
#include "rnn_algorithm.h"
#include "status.h"

namespace rnnlm {

enum class Cell { LSTM = 0, GRU = 1, RNN_TANH = 2, RNN_RELU = 3 };

// Gate blocks per cell, in PyTorch order: LSTM (i, f, g, o), GRU (r, z, n), RNN (one).
inline int gateCount(Cell c) {
  switch (c) {
    case Cell::LSTM: return 4;
    case Cell::GRU: return 3;
    default: return 1;
  }
}

inline Cell parseCell(const std::string& s) {
  static constexpr const char* kNames[] = {"lstm", "gru", "rnn_tanh", "rnn_relu"};  // Cell's order
  return Cell(parseName(kNames, s, "cell"));
}

struct RnnConfig {
  Cell cell = Cell::LSTM;
  int64_t inputSize = 0;
  int64_t hiddenSize = 0;
  int64_t layers = 1;
  double dropout = 0;  // between layers, training only
  bool locked = false;  // one dropout mask per sequence, shared by its time steps (variational)
  Precision precision = Precision::FP32;  // precision.h; the device's Rnn reads it
  RnnAlgorithm algorithm = RnnAlgorithm::Standard;  // cuDNN's only

  int64_t gates() const { return gateCount(cell); }
  int64_t layerInput(int64_t l) const { return l == 0 ? inputSize : hiddenSize; }
};

// Per layer: 0 = weight_ih [G*H, in], 1 = weight_hh [G*H, H], 2 = bias_ih [G*H], 3 = bias_hh [G*H].
struct ParamRef {
  int64_t offset;  // elements from the start of the weight space
  int64_t rows;
  int64_t cols;  // 1 for biases
};

inline int64_t layerWeightSize(const RnnConfig& c, int64_t l) {
  const int64_t gh = c.gates() * c.hiddenSize;
  return gh * c.layerInput(l) + gh * c.hiddenSize + 2 * gh;
}

inline int64_t weightSize(const RnnConfig& c) {
  int64_t n = 0;
  for (int64_t l = 0; l < c.layers; ++l) n += layerWeightSize(c, l);
  return n;
}

inline ParamRef weightParam(const RnnConfig& c, int64_t layer, int id) {
  RNNLM_CHECK(layer >= 0 && layer < c.layers, Code::InvalidArgument,
              "layer %lld is out of range [0, %lld)", (long long)layer, (long long)c.layers);
  RNNLM_CHECK(id >= 0 && id < 4, Code::InvalidArgument,
              "parameter id %d must be 0 (weight_ih), 1 (weight_hh), 2 (bias_ih) or 3 (bias_hh)", id);
  int64_t off = 0;
  for (int64_t l = 0; l < layer; ++l) off += layerWeightSize(c, l);
  const int64_t gh = c.gates() * c.hiddenSize, in = c.layerInput(layer), H = c.hiddenSize;
  switch (id) {
    case 0: return {off, gh, in};
    case 1: return {off + gh * in, gh, H};
    case 2: return {off + gh * in + gh * H, gh, 1};
    default: return {off + gh * in + gh * H + gh, gh, 1};
  }
}

// A quantized stack (inference on the CPU, native/cpu/quant.h): int8 weights in the weight space's
// layout (the biases' slots unused) and a float "side" tensor that holds, per layer, the row scales
// of weight_ih and of weight_hh, then bias_ih and bias_hh: the state_dict's order with one float per
// weight row (lib/nn/network.ts lays the side out that way for every tensor of a model).
inline int64_t quantSideSize(const RnnConfig& c) { return c.layers * 4 * c.gates() * c.hiddenSize; }
inline int64_t quantSideOffset(const RnnConfig& c, int64_t layer, int id) {
  return (layer * 4 + id) * c.gates() * c.hiddenSize;
}

inline void validateConfig(const RnnConfig& c) {
  RNNLM_CHECK(c.inputSize >= 1 && c.inputSize <= (1 << 20), Code::InvalidArgument,
              "inputSize must be an integer in [1, 1048576] (got %lld)", (long long)c.inputSize);
  RNNLM_CHECK(c.hiddenSize >= 1 && c.hiddenSize <= (1 << 20), Code::InvalidArgument,
              "hiddenSize must be an integer in [1, 1048576] (got %lld)", (long long)c.hiddenSize);
  RNNLM_CHECK(c.layers >= 1 && c.layers <= 64, Code::InvalidArgument,
              "layers must be an integer in [1, 64] (got %lld)", (long long)c.layers);
  RNNLM_CHECK(c.dropout >= 0 && c.dropout < 1, Code::InvalidArgument,
              "dropout must be in [0, 1) (got %g)", c.dropout);
}

}  // namespace rnnlm
