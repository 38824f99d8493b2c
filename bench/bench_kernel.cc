// Per-patch cost of the RNNPool kernel core (built and driven by bench_kernel.py).
//
//   bench_kernel time <config> <acts>            prints "<kind> <ns per patch>" lines
//   bench_kernel run  <config> <acts> <kind> <n> runs n patches of one kind (callgrind)
//
// config: vww (6x6x8, h1=h2=8), face (8x8x4, h1=h2=16) or q15 (8x8x4, h1=h2=8: the
//         configuration of the authors' q15_rnnpool_block benchmark).
// acts:   table (gate sigmoid, update tanh: the RNNPool default) or
//         quant (gate quantSigm, update quantTanh: the authors' quantised models).
// kind:   int8     RnnPoolPatchInt8 (tflm_kernels/rnnpool_int8.cc) with a plan
//                  built once by PrepareInt8Plan (Prepare time, not counted)
//         float    RnnPoolPatchFloat (same structure: projection once, float32)
//         naive    a straightforward float patch, as the authors' C reference is
//                  written: every RNN1 step recomputes x @ W, expf / tanhf per
//                  element, no scratch reuse.
// Weights and inputs are random (fixed seed); the cost does not depend on them
// except through the few data-dependent branches (saturation, table index).
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "rnnpool_core.h"

// Cortex-M builds (bench_kernel.py --target, -DRNNPOOL_COUNT_MARKERS): the
// "run" loop sits between these two calls, whose addresses the emulator's
// instruction-counting plugin (tflm_kernels/cortex_m/insn_count_plugin.c) watches.
#if defined(RNNPOOL_COUNT_MARKERS)
#include "stack_meter.h"
extern "C" __attribute__((noinline, used)) void CountBegin() { __asm__ volatile(""); }
extern "C" __attribute__((noinline, used)) void CountEnd() { __asm__ volatile("nop"); }
#else
inline void CountBegin() {}
inline void CountEnd() {}
#endif

namespace {

struct Config {
  int r, c, k, h1, h2;
};

Config GetConfig(const char* name) {
  if (std::strcmp(name, "face") == 0) return Config{8, 8, 4, 16, 16};
  if (std::strcmp(name, "q15") == 0) return Config{8, 8, 4, 8, 8};
  return Config{6, 6, 8, 8, 8};  // vww
}

uint32_t rng_state = 12345u;
uint32_t Next() {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 17;
  rng_state ^= rng_state << 5;
  return rng_state;
}
float Uniform(float lo, float hi) { return lo + (hi - lo) * (Next() & 0xFFFFFF) / 16777216.0f; }

// ---------------------------------------------------------------------------
// The straightforward float patch.
// ---------------------------------------------------------------------------
struct NaiveCell {
  const float *W, *U, *bg, *bu;
  float zeta, nu;
  int in, units;
  bool quant;  // quantSigm / quantTanh instead of sigmoid / tanh
};

// One FastGRNN step, everything recomputed (x @ W included), as in EdgeML's C.
void NaiveStep(const NaiveCell& cell, const float* x, float* h, float* tmp) {
  for (int o = 0; o < cell.units; ++o) {
    float pre = 0.0f;
    for (int j = 0; j < cell.in; ++j) pre += x[j] * cell.W[j * cell.units + o];
    for (int j = 0; j < cell.units; ++j) pre += h[j] * cell.U[j * cell.units + o];
    tmp[o] = pre;
  }
  for (int o = 0; o < cell.units; ++o) {
    float z, c;
    if (cell.quant) {
      z = std::fmin(std::fmax((tmp[o] + cell.bg[o] + 1.0f) * 0.5f, 0.0f), 1.0f);
      c = std::fmin(std::fmax(tmp[o] + cell.bu[o], -1.0f), 1.0f);
    } else {
      z = 1.0f / (1.0f + expf(-(tmp[o] + cell.bg[o])));
      c = tanhf(tmp[o] + cell.bu[o]);
    }
    h[o] = z * h[o] + (cell.zeta * (1.0f - z) + cell.nu) * c;
  }
}

void NaivePatch(const NaiveCell& rnn1, const NaiveCell& rnn2, const float* patch, int r, int c,
                float* out) {
  const int k = rnn1.in, h1 = rnn1.units, h2 = rnn2.units;
  float rows[64 * 256], cols[64 * 256], x[1024], tmp[256];
  for (int i = 0; i < r; ++i) {
    float* h = rows + i * h1;
    for (int o = 0; o < h1; ++o) h[o] = 0.0f;
    for (int j = 0; j < c; ++j) NaiveStep(rnn1, patch + (i * c + j) * k, h, tmp);
  }
  for (int j = 0; j < c; ++j) {
    float* h = cols + j * h1;
    for (int o = 0; o < h1; ++o) h[o] = 0.0f;
    for (int i = 0; i < r; ++i) {
      for (int t = 0; t < k; ++t) x[t] = patch[(i * c + j) * k + t];  // gather column pixel
      NaiveStep(rnn1, x, h, tmp);
    }
  }
  const float* seqs[2] = {rows, cols};
  const int lens[2] = {r, c};
  for (int s = 0; s < 2; ++s) {
    float* a = out + (2 * s) * h2;
    float* b = out + (2 * s + 1) * h2;
    for (int o = 0; o < h2; ++o) a[o] = b[o] = 0.0f;
    for (int t = 0; t < lens[s]; ++t) NaiveStep(rnn2, seqs[s] + t * h1, a, tmp);
    for (int t = lens[s] - 1; t >= 0; --t) NaiveStep(rnn2, seqs[s] + t * h1, b, tmp);
  }
}

// ---------------------------------------------------------------------------
// Random parameters.
// ---------------------------------------------------------------------------
struct FloatWeights {
  std::vector<float> W1, U1, bg1, bu1, W2, U2, bg2, bu2;
};

struct Int8Weights {
  std::vector<int8_t> W1, U1, W2, U2;
  std::vector<int32_t> bg1, bu1, bg2, bu2;
  std::vector<int16_t> sig1, tanh1, sig2, tanh2;
};

std::vector<float> RandomFloats(size_t n, float scale) {
  std::vector<float> v(n);
  for (auto& x : v) x = Uniform(-scale, scale);
  return v;
}

std::vector<int8_t> RandomInt8(size_t n) {
  std::vector<int8_t> v(n);
  for (auto& x : v) x = static_cast<int8_t>(static_cast<int>(Next() % 255) - 127);
  return v;
}

std::vector<int32_t> RandomInt32(size_t n, int32_t range) {
  std::vector<int32_t> v(n);
  for (auto& x : v) x = static_cast<int32_t>(Next() % (2 * range + 1)) - range;
  return v;
}

// integer_activations.make_table: f over the Q3.12 range [-8, 8).
std::vector<int16_t> Table(bool sigmoid) {
  std::vector<int16_t> t(rnnpool::kTableSize);
  for (int i = 0; i < rnnpool::kTableSize; ++i) {
    const double x = (-32768 + 128 * i) / 4096.0;
    const double f = sigmoid ? 1.0 / (1.0 + std::exp(-x)) : std::tanh(x);
    double v = std::round(f * 32768.0);
    if (v > 32767) v = 32767;
    if (v < -32768) v = -32768;
    t[i] = static_cast<int16_t>(v);
  }
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s time|run <vww|face> <table|quant> [kind n]\n", argv[0]);
    return 2;
  }
  const bool timing = std::strcmp(argv[1], "time") == 0;
  const Config cfg = GetConfig(argv[2]);
  const bool quant = std::strcmp(argv[3], "quant") == 0;
  const char* only = argc > 4 ? argv[4] : "";
  const long n_run = argc > 5 ? std::atol(argv[5]) : 0;

  rnnpool::RnnPoolShape shape{cfg.k, cfg.h1, cfg.h2, cfg.r, cfg.c, 1, 1,
                              rnnpool::Padding::kValid,
                              quant ? rnnpool::Activation::kQuantSigm : rnnpool::Activation::kSigmoid,
                              quant ? rnnpool::Activation::kQuantTanh : rnnpool::Activation::kTanh};

  // float
  FloatWeights fw{RandomFloats(cfg.k * cfg.h1, 0.3f), RandomFloats(cfg.h1 * cfg.h1, 0.3f),
                  RandomFloats(cfg.h1, 1.0f),        RandomFloats(cfg.h1, 1.0f),
                  RandomFloats(cfg.h1 * cfg.h2, 0.3f), RandomFloats(cfg.h2 * cfg.h2, 0.3f),
                  RandomFloats(cfg.h2, 1.0f),        RandomFloats(cfg.h2, 1.0f)};
  rnnpool::RnnPoolFloatParams fp{shape,
                                 {fw.W1.data(), fw.U1.data(), fw.bg1.data(), fw.bu1.data(), 1.0f, 0.0f},
                                 {fw.W2.data(), fw.U2.data(), fw.bg2.data(), fw.bu2.data(), 1.0f, 0.0f}};
  NaiveCell n1{fw.W1.data(), fw.U1.data(), fw.bg1.data(), fw.bu1.data(), 1.0f, 0.0f, cfg.k, cfg.h1, quant};
  NaiveCell n2{fw.W2.data(), fw.U2.data(), fw.bg2.data(), fw.bu2.data(), 1.0f, 0.0f, cfg.h1, cfg.h2, quant};

  // int8: plausible scales (input 1/64, pre-activations up to 8, states up to 2).
  const double s_x = 1.0 / 64, pre = 8.0 / 32767, s_h = 2.0 / 32767, s_w = 0.3 / 127;
  Int8Weights iw{RandomInt8(cfg.k * cfg.h1), RandomInt8(cfg.h1 * cfg.h1),
                 RandomInt8(cfg.h1 * cfg.h2), RandomInt8(cfg.h2 * cfg.h2),
                 RandomInt32(cfg.h1, 4096), RandomInt32(cfg.h1, 4096),
                 RandomInt32(cfg.h2, 4096), RandomInt32(cfg.h2, 4096),
                 Table(true), Table(false), Table(true), Table(false)};
  rnnpool::RnnPoolInt8Params ip{};
  ip.shape = shape;
  ip.rnn1 = rnnpool::Int8Cell{iw.W1.data(), iw.U1.data(), iw.bg1.data(), iw.bu1.data(),
                              16384, 0, iw.sig1.data(), iw.tanh1.data(), {}, {}, {}, {}, {}};
  ip.rnn2 = rnnpool::Int8Cell{iw.W2.data(), iw.U2.data(), iw.bg2.data(), iw.bu2.data(),
                              16384, 0, iw.sig2.data(), iw.tanh2.data(), {}, {}, {}, {}, {}};
  rnnpool::ComputeCellMultipliers(s_x, s_w, s_w, pre, s_h, shape.gate_activation,
                                  shape.update_activation, &ip.rnn1);
  rnnpool::ComputeCellMultipliers(s_h, s_w, s_w, pre, s_h, shape.gate_activation,
                                  shape.update_activation, &ip.rnn2);
  ip.input_zero_point = -3;
  ip.output_zero_point = 5;
  int shift = 0;
  rnnpool::QuantizeMultiplier(s_h / (1.0 / 64), &ip.output_multiplier.q, &shift);
  ip.output_multiplier.shift = shift;
  if (rnnpool::ValidateInt8Params(ip) != rnnpool::Status::kOk ||
      rnnpool::ValidateFloatParams(fp) != rnnpool::Status::kOk) {
    std::fprintf(stderr, "bad bench params\n");
    return 1;
  }

  // A few different patches, cycled, so branch predictors see varied data.
  const int kPatches = 16;
  const size_t patch_elems = static_cast<size_t>(cfg.r) * cfg.c * cfg.k;
  std::vector<float> fin = RandomFloats(kPatches * patch_elems, 1.0f);
  std::vector<int8_t> qin(kPatches * patch_elems);
  for (auto& v : qin) v = static_cast<int8_t>(static_cast<int>(Next() % 256) - 128);
  std::vector<float> fout(4 * cfg.h2);
  std::vector<int8_t> qout(4 * cfg.h2);
  std::vector<uint32_t> fscratch(rnnpool::RnnPoolFloatScratchBytes(shape) / 4 + 4);
  std::vector<uint32_t> qscratch(rnnpool::RnnPoolInt8ScratchBytes(shape) / 4 + 4);

  rnnpool::RnnPoolInt8Plan plan;  // once, as TFLM's Prepare does
  if (rnnpool::PrepareInt8Plan(ip, &plan) != rnnpool::Status::kOk) std::abort();
  auto run = [&](int kind, long n) {
    volatile float fsink = 0;
    volatile int qsink = 0;
    for (long i = 0; i < n; ++i) {
      const size_t off = static_cast<size_t>(i % kPatches) * patch_elems;
      if (kind == 0) {
        rnnpool::RnnPoolPatchInt8(plan, qin.data() + off, cfg.r, cfg.c, 0, 0, qout.data(),
                                  qscratch.data());
        qsink = qsink + qout[0];
      } else if (kind == 1) {
        rnnpool::RnnPoolPatchFloat(fp, fin.data() + off, cfg.r, cfg.c, 0, 0, fout.data(),
                                   fscratch.data());
        fsink = fsink + fout[0];
      } else {
        NaivePatch(n1, n2, fin.data() + off, cfg.r, cfg.c, fout.data());
        fsink = fsink + fout[0];
      }
    }
  };
  const char* names[3] = {"int8", "float", "naive"};

  if (!timing) {
    for (int kind = 0; kind < 3; ++kind) {
      if (std::strcmp(only, names[kind]) != 0) continue;
#if defined(RNNPOOL_COUNT_MARKERS)
      const uint32_t* painted = cortex_m::PaintStack();
#endif
      CountBegin();
      run(kind, n_run);
      CountEnd();
#if defined(RNNPOOL_COUNT_MARKERS)
      std::printf("stack_bytes %u\n", static_cast<unsigned>(cortex_m::StackUsedBelow(painted)));
#endif
    }
    return 0;
  }
  // Agreement check of the two float implementations (sanity of the bench).
  std::vector<float> a(4 * cfg.h2), b(4 * cfg.h2);
  rnnpool::RnnPoolPatchFloat(fp, fin.data(), cfg.r, cfg.c, 0, 0, a.data(), fscratch.data());
  NaivePatch(n1, n2, fin.data(), cfg.r, cfg.c, b.data());
  float diff = 0;
  for (int i = 0; i < 4 * cfg.h2; ++i) diff = std::fmax(diff, std::fabs(a[i] - b[i]));
  std::printf("float_vs_naive_maxdiff %g\n", diff);
  std::printf("scratch_bytes int8 %zu float %zu\n", rnnpool::RnnPoolInt8ScratchBytes(shape),
              rnnpool::RnnPoolFloatScratchBytes(shape));
  for (int kind = 0; kind < 3; ++kind) {
    run(kind, 2000);  // warm up
    double best = 1e30;
    for (int rep = 0; rep < 5; ++rep) {
      const long n = 20000;
      const auto t0 = std::chrono::steady_clock::now();
      run(kind, n);
      const auto t1 = std::chrono::steady_clock::now();
      const double ns = std::chrono::duration<double, std::nano>(t1 - t0).count() / n;
      if (ns < best) best = ns;
    }
    std::printf("%s %.1f\n", names[kind], best);
  }
  return 0;
}
