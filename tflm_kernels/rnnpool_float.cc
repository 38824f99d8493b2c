/* RNNPool kernel core, float Eval (float maths of the RNNPool operator). */
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "rnnpool_core.h"
#include "rnnpool_core_internal.h"

namespace rnnpool {
namespace {

using namespace internal;  // NOLINT: the core's shared internals

void ActivationFloat(Activation activation, float* values, int32_t n) {
  switch (activation) {
    case Activation::kSigmoid:
      for (int32_t i = 0; i < n; ++i) values[i] = 1.0f / (1.0f + std::exp(-values[i]));
      break;
    case Activation::kTanh:
      for (int32_t i = 0; i < n; ++i) values[i] = std::tanh(values[i]);
      break;
    case Activation::kQuantSigm:
      for (int32_t i = 0; i < n; ++i) {
        const float v = (values[i] + 1.0f) * 0.5f;
        values[i] = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
      }
      break;
    case Activation::kQuantTanh:
      for (int32_t i = 0; i < n; ++i) {
        const float v = values[i];
        values[i] = v < -1.0f ? -1.0f : (v > 1.0f ? 1.0f : v);
      }
      break;
    case Activation::kRelu:
      for (int32_t i = 0; i < n; ++i) {
        if (values[i] < 0.0f) values[i] = 0.0f;
      }
      break;
  }
}

// Runs a float cell from h = 0 over `steps` projected inputs (layout as
// SweepInt8): h' = z h + (sigmoid(zeta) (1 - z) + sigmoid(nu)) c.
void SweepFloat(const FloatCell& cell, const RnnPoolShape& shape, int32_t units,
                const float* gx, int32_t steps, ptrdiff_t step_stride, float* h,
                const Workspace<float, float>& w) {
  float* gate = w.gate;
  float* update = w.update;
  const float zeta = cell.zeta_sigmoid, nu = cell.nu_sigmoid;
  for (int32_t t = 0; t < steps; ++t, gx += step_stride) {
    if (t == 0) {  // h = 0: h @ U = 0
      for (int32_t o = 0; o < units; ++o) {
        gate[o] = gx[o] + cell.gate_bias[o];
        update[o] = gx[o] + cell.update_bias[o];
      }
    } else {
      MatVec<float>(h, units, 0.0f, cell.recurrent_kernel, units, w.acc);
      for (int32_t o = 0; o < units; ++o) {
        const float pre = gx[o] + w.acc[o];
        gate[o] = pre + cell.gate_bias[o];
        update[o] = pre + cell.update_bias[o];
      }
    }
    ActivationFloat(shape.gate_activation, gate, units);
    ActivationFloat(shape.update_activation, update, units);
    for (int32_t o = 0; o < units; ++o) {
      const float z = gate[o];
      const float kept = t == 0 ? 0.0f : z * h[o];
      h[o] = kept + (zeta * (1.0f - z) + nu) * update[o];
    }
  }
}

}  // namespace

void RnnPoolPatchFloat(const RnnPoolFloatParams& params, const float* image,
                       int32_t height, int32_t width, int32_t top, int32_t left,
                       float* output, void* scratch) {
  const RnnPoolShape& s = params.shape;
  const int32_t k = s.in_channels, h1 = s.rnn1_units, h2 = s.rnn2_units;
  const int32_t r = s.pool_h, c = s.pool_w;
  const Workspace<float, float> w = CarveWorkspace<float, float>(s, scratch, true);

  // 1. x @ W of every pixel, once; padded pixels (0.0) project to 0.
  const InsideSpan rows = SpanInside(top, r, height), cols = SpanInside(left, c, width);
  for (int32_t i = 0; i < r; ++i) {
    for (int32_t j = 0; j < c; ++j) {
      float* g = w.proj1 + (static_cast<size_t>(i) * c + j) * h1;
      if (i < rows.begin || i >= rows.end || j < cols.begin || j >= cols.end) {
        for (int32_t o = 0; o < h1; ++o) g[o] = 0.0f;
        continue;
      }
      const int32_t y = top + i, x = left + j;  // inside the image: no overflow
      MatVec<float>(image + (static_cast<size_t>(y) * width + x) * k, k, 0.0f,
                    params.rnn1.kernel, h1, g);
    }
  }
  // 2. RNN1 along rows, then columns.
  for (int32_t i = 0; i < r; ++i) {
    SweepFloat(params.rnn1, s, h1, w.proj1 + static_cast<size_t>(i) * c * h1, c, h1,
               w.states1 + static_cast<size_t>(i) * h1, w);
  }
  for (int32_t j = 0; j < c; ++j) {
    SweepFloat(params.rnn1, s, h1, w.proj1 + static_cast<size_t>(j) * h1, r,
               static_cast<ptrdiff_t>(c) * h1, w.states1 + static_cast<size_t>(r + j) * h1, w);
  }
  // 3. RNN2 forward / backward over rows, then columns; states go to the output.
  const int32_t counts[2] = {r, c};
  for (int32_t pass = 0; pass < 2; ++pass) {
    const int32_t count = counts[pass];
    const float* summaries = w.states1 + (pass == 0 ? 0 : static_cast<size_t>(r) * h1);
    for (int32_t t = 0; t < count; ++t) {
      MatVec<float>(summaries + static_cast<size_t>(t) * h1, h1, 0.0f, params.rnn2.kernel, h2,
                    w.proj2 + static_cast<size_t>(t) * h2);
    }
    float* out = output + static_cast<size_t>(pass) * 2 * h2;
    SweepFloat(params.rnn2, s, h2, w.proj2, count, h2, out, w);
    SweepFloat(params.rnn2, s, h2, w.proj2 + static_cast<size_t>(count - 1) * h2, count, -h2,
               out + h2, w);
  }
}

void RnnPoolFloat(const RnnPoolFloatParams& params, const float* input, int32_t batch,
                  int32_t height, int32_t width, float* output, void* scratch) {
  WholeMap(params, input, batch, height, width, output, scratch, RnnPoolPatchFloat);
}

}  // namespace rnnpool
