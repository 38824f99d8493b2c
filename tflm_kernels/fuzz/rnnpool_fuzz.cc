// Randomised sanitizer harness of the RNNPool kernel core (no Python).
//
//   rnnpool_fuzz [cases=10000] [seed=1]
//
// Each case draws sizes, parameters and an input, then either
//  - (about 1 case in 6) breaks one parameter so that it is outside the spec
//    (docs/int8_rnnpool.md section 5 sizes, relu gate, zeta/nu, zero points,
//    multipliers, null pointers) and checks that ValidateInt8Params /
//    ValidateFloatParams reject it with the expected status; or
//  - runs RnnPoolInt8 and RnnPoolFloat on the whole map, with input, output
//    and scratch allocated at exactly their sizes (so AddressSanitizer sees any
//    access past them), and checks
//      * int8: every output equals an independent, literal transcription of the
//        spec in this file (int64 everywhere, the spec's own forms of SRDHM,
//        RDBPOT and MBQM), so the kernel's faster but equivalent forms are
//        checked on extreme random values too;
//      * int8 and float: the per-patch entry point equals the whole map;
//      * int8, where the plan runs AVX2 stages (x86-64): a portable plan
//        (Int8PlanOptions::allow_simd = false) gives the same bytes;
//      * int8, in about half the small cases, the fused stem convolution +
//        RNNPool (rnnpool_stem.h) on a random image and convolution: its
//        convolution rows equal a literal convolution (int64, the spec's
//        MBQM), its AVX2 rows (PrepareStemInt8Simd, where it applies) the
//        portable ones, and the fused op equals RnnPoolInt8 on that map.
// Weights span the whole int8 range (-128 included), biases the whole int32
// range, tables arbitrary int16 values, multipliers every valid (q, shift).
// Build with -fsanitize=address,undefined -fno-sanitize-recover=all: see README.md.
// Exit status 0 and a last line "OK ..." when every check passed.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "../rnnpool_core.h"
#include "../rnnpool_stem.h"

namespace {

using rnnpool::Activation;
using rnnpool::Multiplier;
using rnnpool::Padding;
using rnnpool::RnnPoolShape;
using rnnpool::Status;

std::mt19937_64 rng;

int64_t Uniform(int64_t lo, int64_t hi) {  // inclusive
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}
bool Chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; }

// Heap block of exactly n elements (at least 1 byte so malloc never returns null).
template <typename T>
struct Exact {
  T* data = nullptr;
  size_t n = 0;
  explicit Exact(size_t count) : n(count) {
    data = static_cast<T*>(std::malloc(count * sizeof(T) > 0 ? count * sizeof(T) : 1));
    if (data == nullptr) std::abort();
  }
  ~Exact() { std::free(data); }
  Exact(const Exact&) = delete;
  Exact& operator=(const Exact&) = delete;
};

// ---------------------------------------------------------------------------
// The spec, literally (docs/int8_rnnpool.md sections 2 and 4), in int64.
// ---------------------------------------------------------------------------
namespace spec {

int64_t Srdhm(int64_t a, int64_t b) {
  if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
  const int64_t ab = a * b;
  const int64_t nudge = ab >= 0 ? (int64_t{1} << 30) : 1 - (int64_t{1} << 30);
  return (ab + nudge) / (int64_t{1} << 31);  // C division: toward zero
}

int64_t Rdbpot(int64_t x, int n) {
  const int64_t mask = (int64_t{1} << n) - 1;
  const int64_t remainder = x & mask;
  const int64_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> n) + (remainder > threshold ? 1 : 0);
}

int64_t Clamp(int64_t x, int64_t lo, int64_t hi) { return x < lo ? lo : (x > hi ? hi : x); }

int64_t Mbqm(int64_t x, const Multiplier& m) {
  const int left = m.shift > 0 ? m.shift : 0, right = m.shift > 0 ? 0 : -m.shift;
  x = Clamp(x * (int64_t{1} << left), INT32_MIN, INT32_MAX);
  return Rdbpot(Srdhm(x, m.q), right);
}

int64_t Activate(Activation a, int64_t x, const int16_t* table, const Multiplier& m) {
  switch (a) {
    case Activation::kSigmoid:
    case Activation::kTanh: {
      const int64_t q = Clamp(Mbqm(x, m), INT16_MIN, INT16_MAX);
      const int64_t o = q + 32768, i = o >> 7, f = o & 127;
      return table[i] + Rdbpot((table[i + 1] - table[i]) * f, 7);
    }
    case Activation::kQuantTanh:
      return Clamp(Mbqm(x, m), INT16_MIN, INT16_MAX);
    case Activation::kQuantSigm:
      return Clamp(Mbqm(x, m) + (1 << 14), 0, INT16_MAX);
    case Activation::kRelu:
      return x > 0 ? x : 0;
  }
  std::abort();
}

// Final state of a cell over `steps` inputs given as int64 vectors.
std::vector<int64_t> Cell(const rnnpool::Int8Cell& cell, const RnnPoolShape& s, int units,
                          const std::vector<std::vector<int64_t>>& gx) {
  std::vector<int64_t> h(units, 0), next(units);
  for (const auto& g : gx) {
    for (int o = 0; o < units; ++o) {
      int64_t acc = 0;
      for (int j = 0; j < units; ++j) acc += h[j] * cell.recurrent_kernel[j * units + o];
      if (acc < INT32_MIN || acc > INT32_MAX) std::abort();  // spec 5 bound
      const int64_t gh = Mbqm(acc, cell.recurrent_multiplier);
      const int64_t z = Activate(s.gate_activation,
                                 Clamp(g[o] + gh + cell.gate_bias[o], INT16_MIN, INT16_MAX),
                                 cell.gate_table, cell.gate_activation_multiplier);
      const int64_t c = Activate(s.update_activation,
                                 Clamp(g[o] + gh + cell.update_bias[o], INT16_MIN, INT16_MAX),
                                 cell.update_table, cell.update_activation_multiplier);
      const int64_t coef = Rdbpot(cell.zeta_q14 * (32768 - z), 15) + cell.nu_q14;
      next[o] = Clamp(Rdbpot(z * h[o], 15) + Mbqm(coef * c, cell.update_multiplier),
                      INT16_MIN, INT16_MAX);
    }
    h = next;
  }
  return h;
}

std::vector<int64_t> Project(const rnnpool::Int8Cell& cell, int in, int units,
                             const std::vector<int64_t>& v) {
  std::vector<int64_t> g(units);
  for (int o = 0; o < units; ++o) {
    int64_t acc = 0;
    for (int j = 0; j < in; ++j) acc += v[j] * cell.kernel[j * units + o];
    if (acc < INT32_MIN || acc > INT32_MAX) std::abort();
    g[o] = Mbqm(acc, cell.input_multiplier);
  }
  return g;
}

// One patch with top-left corner (top, left) of one image.
void Patch(const rnnpool::RnnPoolInt8Params& p, const int8_t* image, int height, int width,
           int top, int left, int8_t* out) {
  const RnnPoolShape& s = p.shape;
  const int k = s.in_channels, h1 = s.rnn1_units, h2 = s.rnn2_units;
  std::vector<std::vector<int64_t>> proj(s.pool_h * s.pool_w);
  for (int i = 0; i < s.pool_h; ++i) {
    for (int j = 0; j < s.pool_w; ++j) {
      std::vector<int64_t> x(k);
      const int y = top + i, xx = left + j;
      const bool inside = y >= 0 && y < height && xx >= 0 && xx < width;
      for (int t = 0; t < k; ++t) {
        const int64_t v = inside ? image[(static_cast<size_t>(y) * width + xx) * k + t]
                                 : p.input_zero_point;
        x[t] = v - p.input_zero_point;
      }
      proj[i * s.pool_w + j] = Project(p.rnn1, k, h1, x);
    }
  }
  std::vector<std::vector<int64_t>> rows, cols;
  for (int i = 0; i < s.pool_h; ++i) {
    std::vector<std::vector<int64_t>> seq;
    for (int j = 0; j < s.pool_w; ++j) seq.push_back(proj[i * s.pool_w + j]);
    rows.push_back(Cell(p.rnn1, s, h1, seq));
  }
  for (int j = 0; j < s.pool_w; ++j) {
    std::vector<std::vector<int64_t>> seq;
    for (int i = 0; i < s.pool_h; ++i) seq.push_back(proj[i * s.pool_w + j]);
    cols.push_back(Cell(p.rnn1, s, h1, seq));
  }
  int written = 0;
  for (const auto* summaries : {&rows, &cols}) {
    std::vector<std::vector<int64_t>> seq;
    for (const auto& v : *summaries) seq.push_back(Project(p.rnn2, h1, h2, v));
    for (int direction = 0; direction < 2; ++direction) {
      std::vector<std::vector<int64_t>> ordered = seq;
      if (direction == 1) ordered.assign(seq.rbegin(), seq.rend());
      const std::vector<int64_t> h = Cell(p.rnn2, s, h2, ordered);
      for (int o = 0; o < h2; ++o) {
        out[written++] = static_cast<int8_t>(
            Clamp(Mbqm(h[o], p.output_multiplier) + p.output_zero_point, -128, 127));
      }
    }
  }
}

}  // namespace spec

// ---------------------------------------------------------------------------
// Random parameters.
// ---------------------------------------------------------------------------
Multiplier RandomMultiplier() {
  if (Chance(0.03)) return Multiplier{0, 0};
  int32_t shift;
  if (Chance(0.15)) {
    shift = static_cast<int32_t>(Uniform(-31, 30));  // anything valid, extremes included
  } else {
    shift = static_cast<int32_t>(Uniform(-12, 4));   // what real scales give
  }
  int32_t q = static_cast<int32_t>(Uniform(int64_t{1} << 30, (int64_t{1} << 31) - 1));
  if (Chance(0.05)) q = static_cast<int32_t>(int64_t{1} << 30);
  if (Chance(0.05)) q = INT32_MAX;
  return Multiplier{q, shift};
}

struct Storage {
  std::vector<int8_t> W1, U1, W2, U2;
  std::vector<int32_t> bg1, bu1, bg2, bu2;
  std::vector<int16_t> gt1, ut1, gt2, ut2;
  std::vector<float> fW1, fU1, fW2, fU2, fbg1, fbu1, fbg2, fbu2;
};

template <typename T>
std::vector<T> RandomInts(size_t n, int64_t lo, int64_t hi) {
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(Uniform(lo, hi));
  return v;
}

std::vector<int32_t> RandomBias(size_t n) {
  const int64_t range = Chance(0.1) ? INT32_MAX : (Chance(0.5) ? 40000 : 4000);
  return RandomInts<int32_t>(n, range == INT32_MAX ? INT32_MIN : -range, range);
}

std::vector<float> RandomFloats(size_t n, float scale) {
  std::vector<float> v(n);
  std::normal_distribution<float> normal(0.0f, scale);
  for (auto& x : v) x = normal(rng);
  return v;
}

std::vector<int16_t> RandomTable() {
  std::vector<int16_t> t(rnnpool::kTableSize);
  if (Chance(0.5)) {  // arbitrary values
    for (auto& x : t) x = static_cast<int16_t>(Uniform(INT16_MIN, INT16_MAX));
  } else {  // a real sigmoid or tanh table over Q3.12
    const bool sigmoid = Chance(0.5);
    for (int i = 0; i < rnnpool::kTableSize; ++i) {
      const double x = (-32768 + 128 * i) / 4096.0;
      const double f = sigmoid ? 1 / (1 + std::exp(-x)) : std::tanh(x);
      t[i] = static_cast<int16_t>(spec::Clamp(std::llround(f * 32768), INT16_MIN, INT16_MAX));
    }
  }
  return t;
}

Activation RandomActivation(bool allow_relu) {
  constexpr Activation kAll[5] = {Activation::kSigmoid, Activation::kTanh,
                                  Activation::kQuantSigm, Activation::kQuantTanh,
                                  Activation::kRelu};  // relu last: excluded by the range
  return kAll[Uniform(0, allow_relu ? 4 : 3)];
}

void FillInt8Cell(rnnpool::Int8Cell* cell, int in, int units, std::vector<int8_t>* W,
                  std::vector<int8_t>* U, std::vector<int32_t>* bg, std::vector<int32_t>* bu,
                  std::vector<int16_t>* gt, std::vector<int16_t>* ut) {
  *W = RandomInts<int8_t>(static_cast<size_t>(in) * units, -128, 127);
  *U = RandomInts<int8_t>(static_cast<size_t>(units) * units, -128, 127);
  if (Chance(0.1)) {  // extreme weights
    for (auto& w : *W) w = Chance(0.5) ? 127 : -128;
    for (auto& w : *U) w = Chance(0.5) ? 127 : -128;
  }
  *bg = RandomBias(units);
  *bu = RandomBias(units);
  *gt = RandomTable();
  *ut = RandomTable();
  cell->kernel = W->data();
  cell->recurrent_kernel = U->data();
  cell->gate_bias = bg->data();
  cell->update_bias = bu->data();
  cell->gate_table = gt->data();
  cell->update_table = ut->data();
  cell->zeta_q14 = static_cast<int32_t>(Chance(0.3) ? 16384 : Uniform(0, 16384));
  cell->nu_q14 = static_cast<int32_t>(Chance(0.3) ? 0 : Uniform(0, 16384));
  cell->input_multiplier = RandomMultiplier();
  cell->recurrent_multiplier = RandomMultiplier();
  cell->update_multiplier = RandomMultiplier();
  cell->gate_activation_multiplier = RandomMultiplier();
  cell->update_activation_multiplier = RandomMultiplier();
}

RnnPoolShape RandomShape(int* height, int* width, int* batch) {
  RnnPoolShape s{};
  s.in_channels = static_cast<int32_t>(Uniform(1, 12));
  s.rnn1_units = static_cast<int32_t>(Uniform(1, 12));
  s.rnn2_units = static_cast<int32_t>(Uniform(1, 12));
  // Multiples of 8 more often: the sizes the AVX2 stages take (x86-64 hosts).
  if (Chance(0.3)) s.rnn1_units = static_cast<int32_t>(8 * Uniform(1, 3));
  if (Chance(0.3)) s.rnn2_units = static_cast<int32_t>(8 * Uniform(1, 3));
  s.pool_h = static_cast<int32_t>(Uniform(1, 7));
  s.pool_w = static_cast<int32_t>(Uniform(1, 7));
  s.stride_h = static_cast<int32_t>(Uniform(1, 5));
  s.stride_w = static_cast<int32_t>(Uniform(1, 5));
  s.padding = Chance(0.5) ? Padding::kValid : Padding::kSame;
  *height = static_cast<int>(Uniform(0, 12));
  *width = static_cast<int>(Uniform(0, 12));
  *batch = static_cast<int>(Uniform(1, 2));
  if (Chance(0.03)) {  // one dimension at its limit, a single small patch
    *height = *width = 2;
    s.pool_h = s.pool_w = 2;
    s.padding = Padding::kValid;
    *batch = 1;
    switch (Uniform(0, 3)) {
      case 0:
        s.in_channels = rnnpool::kMaxInputChannels;
        break;
      case 1:
        s.rnn1_units = rnnpool::kMaxUnits;
        s.in_channels = 2;
        break;
      case 2:
        s.rnn2_units = rnnpool::kMaxUnits;
        break;
      default:
        s.pool_h = s.pool_w = rnnpool::kMaxPool;
        *height = *width = rnnpool::kMaxPool;
        s.in_channels = s.rnn1_units = s.rnn2_units = 2;
        break;
    }
  }
  return s;
}

// ---------------------------------------------------------------------------
// Invalid parameters: break exactly one thing, expect `expected`.
// ---------------------------------------------------------------------------
Status BreakOne(rnnpool::RnnPoolInt8Params* p, rnnpool::RnnPoolFloatParams* f,
                bool* float_applies) {
  RnnPoolShape& s = p->shape;
  *float_applies = true;
  switch (Uniform(0, 15)) {
    case 0:
      s.in_channels = Chance(0.5) ? 0 : static_cast<int32_t>(Uniform(1025, 100000));
      f->shape = s;
      return Status::kBadInputChannels;
    case 1:
      (Chance(0.5) ? s.rnn1_units : s.rnn2_units) =
          Chance(0.5) ? static_cast<int32_t>(Uniform(-5, 0)) : static_cast<int32_t>(Uniform(257, 5000));
      f->shape = s;
      return Status::kBadUnits;
    case 2:
      (Chance(0.5) ? s.pool_h : s.pool_w) =
          Chance(0.5) ? static_cast<int32_t>(Uniform(-3, 0)) : static_cast<int32_t>(Uniform(65, 1000));
      f->shape = s;
      return Status::kBadPool;
    case 3:
      (Chance(0.5) ? s.stride_h : s.stride_w) = static_cast<int32_t>(Uniform(-3, 0));
      f->shape = s;
      return Status::kBadStride;
    case 4:
      s.padding = static_cast<Padding>(Uniform(2, 9));
      f->shape = s;
      return Status::kBadPadding;
    case 5:
      (Chance(0.5) ? s.gate_activation : s.update_activation) =
          static_cast<Activation>(Chance(0.5) ? Uniform(5, 50) : -1);
      f->shape = s;
      return Status::kBadActivation;
    case 6:
      s.gate_activation = Activation::kRelu;
      *float_applies = false;  // a relu gate is fine in float
      return Status::kReluGate;
    case 7:
      (Chance(0.5) ? p->rnn1 : p->rnn2).zeta_q14 =
          static_cast<int32_t>(Chance(0.5) ? Uniform(16385, 1 << 20) : Uniform(-1000, -1));
      *float_applies = false;
      return Status::kBadZetaNu;
    case 8:
      (Chance(0.5) ? p->rnn1 : p->rnn2).nu_q14 = static_cast<int32_t>(Uniform(16385, 40000));
      *float_applies = false;
      return Status::kBadZetaNu;
    case 9:
      (Chance(0.5) ? p->input_zero_point : p->output_zero_point) =
          static_cast<int32_t>(Chance(0.5) ? Uniform(128, 1000) : Uniform(-1000, -129));
      *float_applies = false;
      return Status::kBadZeroPoint;
    case 10: {
      Multiplier* targets[4] = {&p->rnn1.input_multiplier, &p->rnn2.recurrent_multiplier,
                                &p->rnn1.update_multiplier, &p->output_multiplier};
      Multiplier* m = targets[Uniform(0, 3)];
      switch (Uniform(0, 2)) {
        case 0:
          m->q = static_cast<int32_t>(Uniform(1, (int64_t{1} << 30) - 1));
          break;
        case 1:
          m->q = static_cast<int32_t>(Uniform(INT32_MIN, -1));
          break;
        default:
          m->shift = static_cast<int32_t>(Chance(0.5) ? Uniform(31, 100) : Uniform(-100, -32));
          break;
      }
      *float_applies = false;
      return Status::kBadMultiplier;
    }
    case 11: {
      // An activation multiplier matters unless the activation is relu.
      s.gate_activation = RandomActivation(false);
      p->rnn2.gate_activation_multiplier.shift = 40;
      *float_applies = false;
      return Status::kBadMultiplier;
    }
    case 12:
      p->rnn2.recurrent_kernel = nullptr;
      f->rnn2.recurrent_kernel = nullptr;
      return Status::kNullPointer;
    case 13:
      p->rnn1.gate_bias = nullptr;
      f->rnn1.update_bias = nullptr;
      return Status::kNullPointer;
    case 14:
      s.update_activation = Chance(0.5) ? Activation::kSigmoid : Activation::kTanh;
      p->rnn1.update_table = nullptr;
      *float_applies = false;
      return Status::kNullPointer;
    default:
      s.pool_w = 0;
      s.in_channels = 5000;  // the first failing check is reported
      f->shape = s;
      return Status::kBadInputChannels;
  }
}

struct Counts {
  long valid = 0, invalid = 0, patches = 0, large = 0, stems = 0;
  long simd_sweeps = 0, simd_projections = 0;  // cases whose plan ran such AVX2 stages
  long simd_stems = 0;                          // fused stems run in AVX2 form too
};

// The fused stem convolution on a random image whose convolution gives
// RNNPool a map of about the case's size; see the file comment.
bool RunStemCase(long index, const rnnpool::RnnPoolInt8Plan& plan, const RnnPoolShape& s,
                 int32_t input_zero_point, long* simd_stems) {
  const int kh = static_cast<int>(Uniform(1, 4)), kw = static_cast<int>(Uniform(1, 4));
  const int sh = static_cast<int>(Uniform(1, 3)), sw = static_cast<int>(Uniform(1, 3));
  const int channels = static_cast<int>(Uniform(1, 4));
  const Padding padding = Chance(0.5) ? Padding::kSame : Padding::kValid;
  const int image_h = static_cast<int>(Uniform(1, 3 * s.pool_h + 6));
  const int image_w = static_cast<int>(Uniform(1, 3 * s.pool_w + 6));
  const int batch = static_cast<int>(Uniform(1, 2));
  rnnpool::StemInt8Params stem{};
  stem.shape = rnnpool::StemShapeFor(image_h, image_w, channels, s.in_channels, kh, kw, sh, sw,
                                     padding);
  const rnnpool::StemShape& g = stem.shape;
  if (g.out_height < 1 || g.out_width < 1 ||
      rnnpool::OutputSize(g.out_height, s.pool_h, s.stride_h, s.padding) < 1 ||
      rnnpool::OutputSize(g.out_width, s.pool_w, s.stride_w, s.padding) < 1) {
    return true;  // no output: nothing to compare
  }
  const size_t k = static_cast<size_t>(s.in_channels);
  const size_t taps = static_cast<size_t>(kh) * kw * channels;
  Exact<int8_t> filter(k * taps), image(static_cast<size_t>(batch) * image_h * image_w * channels);
  Exact<int32_t> bias(k), multiplier(k), shift(k);
  for (size_t i = 0; i < filter.n; ++i) filter.data[i] = static_cast<int8_t>(Uniform(-128, 127));
  for (size_t i = 0; i < image.n; ++i) image.data[i] = static_cast<int8_t>(Uniform(-128, 127));
  for (size_t c = 0; c < k; ++c) {  // biases and multipliers over their whole ranges
    bias.data[c] = static_cast<int32_t>(Chance(0.2) ? Uniform(INT32_MIN, INT32_MAX)
                                                    : Uniform(-100000, 100000));
    multiplier.data[c] = static_cast<int32_t>(Uniform(int64_t{1} << 30, INT32_MAX));
    shift.data[c] = static_cast<int32_t>(Chance(0.2) ? Uniform(-31, 30) : Uniform(-12, 0));
  }
  stem.filter = filter.data;
  stem.bias = bias.data;
  stem.multiplier = multiplier.data;
  stem.shift = shift.data;
  stem.input_offset = -static_cast<int32_t>(Uniform(-128, 127));
  stem.output_offset = input_zero_point;  // RNNPool reads the map with its zero point
  stem.activation_min = static_cast<int32_t>(Uniform(-128, 0));
  stem.activation_max = static_cast<int32_t>(Uniform(stem.activation_min, 127));
  // The map row by row, each row checked against a literal convolution.
  const size_t row_values = static_cast<size_t>(g.out_width) * k;
  const size_t image_values = static_cast<size_t>(image_h) * image_w * channels;
  Exact<int8_t> map(static_cast<size_t>(batch) * g.out_height * row_values);
  Exact<unsigned char> row_scratch(rnnpool::StemRowInt8ScratchBytes(g));
  for (int b = 0; b < batch; ++b) {
    const int8_t* one = image.data + b * image_values;
    for (int y = 0; y < g.out_height; ++y) {
      int8_t* row = map.data + (static_cast<size_t>(b) * g.out_height + y) * row_values;
      rnnpool::StemRowInt8(stem, one, y, row, row_scratch.data);
      for (int x = 0; x < g.out_width; ++x) {
        for (size_t c = 0; c < k; ++c) {
          int64_t acc = 0;
          for (int ky = 0; ky < kh; ++ky) {
            for (int kx = 0; kx < kw; ++kx) {
              const int iy = y * sh - g.pad_top + ky, ix = x * sw - g.pad_left + kx;
              if (iy < 0 || iy >= image_h || ix < 0 || ix >= image_w) continue;
              for (int ci = 0; ci < channels; ++ci) {
                acc += (one[(static_cast<size_t>(iy) * image_w + ix) * channels + ci] +
                        stem.input_offset) *
                       int64_t{filter.data[((c * kh + ky) * kw + kx) * channels + ci]};
              }
            }
          }
          acc = spec::Clamp(acc + bias.data[c], INT32_MIN, INT32_MAX);
          const Multiplier m{multiplier.data[c], shift.data[c]};
          const int64_t want = spec::Clamp(spec::Mbqm(acc, m) + stem.output_offset,
                                           stem.activation_min, stem.activation_max);
          if (row[static_cast<size_t>(x) * k + c] != want) {
            std::printf("case %ld: stem convolution mismatch at b=%d y=%d x=%d c=%d\n", index,
                        b, y, x, static_cast<int>(c));
            return false;
          }
        }
      }
    }
  }
  // The host form (AVX2, where the CPU has it and the bounds allow): the
  // same rows as the portable one.
  rnnpool::StemInt8Params simd_stem = stem;
  Exact<unsigned char> simd_storage(rnnpool::StemInt8SimdBytes(g));
  if (simd_storage.n > 0 && rnnpool::PrepareStemInt8Simd(&simd_stem, simd_storage.data)) {
    ++*simd_stems;
    Exact<int8_t> simd_row(row_values);
    for (int b = 0; b < batch; ++b) {
      for (int y = 0; y < g.out_height; ++y) {
        rnnpool::StemRowInt8(simd_stem, image.data + b * image_values, y, simd_row.data,
                             row_scratch.data);
        if (std::memcmp(simd_row.data,
                        map.data + (static_cast<size_t>(b) * g.out_height + y) * row_values,
                        row_values) != 0) {
          std::printf("case %ld: AVX2 stem row %d of image %d differs from the portable one\n",
                      index, y, b);
          return false;
        }
      }
    }
  }
  const size_t out_values = static_cast<size_t>(batch) *
                            rnnpool::OutputSize(g.out_height, s.pool_h, s.stride_h, s.padding) *
                            rnnpool::OutputSize(g.out_width, s.pool_w, s.stride_w, s.padding) *
                            4 * s.rnn2_units;
  Exact<int8_t> fused(out_values), unfused(out_values);
  Exact<unsigned char> fused_scratch(rnnpool::StemRnnPoolInt8ScratchBytes(g, s));
  Exact<unsigned char> scratch(rnnpool::RnnPoolInt8ScratchBytes(s));
  rnnpool::StemRnnPoolInt8(simd_stem, plan, image.data, batch, fused.data, fused_scratch.data);
  rnnpool::RnnPoolInt8(plan, map.data, batch, g.out_height, g.out_width, unfused.data,
                       scratch.data);
  if (std::memcmp(fused.data, unfused.data, out_values) != 0) {
    std::printf("case %ld: the fused op differs from RNNPool on the convolution's map\n",
                index);
    return false;
  }
  return true;
}

bool RunCase(long index, Counts* counts) {
  int height = 0, width = 0, batch = 1;
  Storage st;
  rnnpool::RnnPoolInt8Params p{};
  p.shape = RandomShape(&height, &width, &batch);
  p.shape.gate_activation = RandomActivation(false);
  p.shape.update_activation = RandomActivation(true);
  const RnnPoolShape& s = p.shape;
  FillInt8Cell(&p.rnn1, s.in_channels, s.rnn1_units, &st.W1, &st.U1, &st.bg1, &st.bu1, &st.gt1,
               &st.ut1);
  FillInt8Cell(&p.rnn2, s.rnn1_units, s.rnn2_units, &st.W2, &st.U2, &st.bg2, &st.bu2, &st.gt2,
               &st.ut2);
  p.input_zero_point = static_cast<int32_t>(Uniform(-128, 127));
  p.output_zero_point = static_cast<int32_t>(Uniform(-128, 127));
  p.output_multiplier = RandomMultiplier();

  const float wscale = Chance(0.2) ? 2.0f : 0.4f;
  st.fW1 = RandomFloats(static_cast<size_t>(s.in_channels) * s.rnn1_units, wscale);
  st.fU1 = RandomFloats(static_cast<size_t>(s.rnn1_units) * s.rnn1_units, wscale);
  st.fW2 = RandomFloats(static_cast<size_t>(s.rnn1_units) * s.rnn2_units, wscale);
  st.fU2 = RandomFloats(static_cast<size_t>(s.rnn2_units) * s.rnn2_units, wscale);
  st.fbg1 = RandomFloats(s.rnn1_units, 1.0f);
  st.fbu1 = RandomFloats(s.rnn1_units, 1.0f);
  st.fbg2 = RandomFloats(s.rnn2_units, 1.0f);
  st.fbu2 = RandomFloats(s.rnn2_units, 1.0f);
  rnnpool::RnnPoolFloatParams f{
      s,
      {st.fW1.data(), st.fU1.data(), st.fbg1.data(), st.fbu1.data(),
       static_cast<float>(Uniform(0, 1000)) / 1000.0f, static_cast<float>(Uniform(0, 1000)) / 1000.0f},
      {st.fW2.data(), st.fU2.data(), st.fbg2.data(), st.fbu2.data(), 1.0f, 0.0f}};
  if (Chance(0.3)) f.shape.gate_activation = Activation::kRelu;  // float allows it

  if (rnnpool::ValidateInt8Params(p) != Status::kOk ||
      rnnpool::ValidateFloatParams(f) != Status::kOk) {
    std::printf("case %ld: valid parameters rejected: %s / %s\n", index,
                rnnpool::StatusMessage(rnnpool::ValidateInt8Params(p)),
                rnnpool::StatusMessage(rnnpool::ValidateFloatParams(f)));
    return false;
  }

  if (Chance(1.0 / 6)) {
    bool float_applies = true;
    const Status expected = BreakOne(&p, &f, &float_applies);
    const Status got = rnnpool::ValidateInt8Params(p);
    const Status got_float = rnnpool::ValidateFloatParams(f);
    if (got != expected || (float_applies && got_float != expected) ||
        (!float_applies && got_float != Status::kOk)) {
      std::printf("case %ld: expected status %d (%s), got int8 %d, float %d\n", index,
                  static_cast<int>(expected), rnnpool::StatusMessage(expected),
                  static_cast<int>(got), static_cast<int>(got_float));
      return false;
    }
    ++counts->invalid;
    return true;
  }
  ++counts->valid;
  const bool large = s.in_channels > 12 || s.rnn1_units > 24 || s.rnn2_units > 24 ||
                     s.pool_h > 7 || s.pool_w > 7;
  counts->large += large ? 1 : 0;

  const int out_h = rnnpool::OutputSize(height, s.pool_h, s.stride_h, s.padding);
  const int out_w = rnnpool::OutputSize(width, s.pool_w, s.stride_w, s.padding);
  const int pad_top = rnnpool::PaddingBefore(height, s.pool_h, s.stride_h, s.padding);
  const int pad_left = rnnpool::PaddingBefore(width, s.pool_w, s.stride_w, s.padding);
  const size_t in_size = static_cast<size_t>(batch) * height * width * s.in_channels;
  const size_t image_size = static_cast<size_t>(height) * width * s.in_channels;
  const size_t out_c = 4 * static_cast<size_t>(s.rnn2_units);
  const size_t out_size = static_cast<size_t>(batch) * out_h * out_w * out_c;

  // int8.
  {
    Exact<int8_t> x(in_size), y(out_size), patch(out_c), want(out_c);
    Exact<unsigned char> scratch(rnnpool::RnnPoolInt8ScratchBytes(s));
    const int mode = static_cast<int>(Uniform(0, 4));
    for (size_t i = 0; i < in_size; ++i) {
      x.data[i] = static_cast<int8_t>(mode == 0 ? -128 : mode == 1 ? 127
                                      : mode == 2 ? p.input_zero_point : Uniform(-128, 127));
    }
    rnnpool::RnnPoolInt8Plan plan;
    if (rnnpool::PrepareInt8Plan(p, &plan) != rnnpool::Status::kOk) {
      std::printf("case %ld: PrepareInt8Plan refused valid parameters\n", index);
      std::abort();
    }
    rnnpool::RnnPoolInt8(plan, x.data, batch, height, width, y.data, scratch.data);
    counts->patches += static_cast<long>(batch) * out_h * out_w;
    // The portable plan (no SIMD stages) gives the same bytes.
    const uint32_t stages = rnnpool::Int8PlanSimdStages(plan);
    if (stages != 0) {
      counts->simd_sweeps += (stages & (rnnpool::kInt8SimdRnn1Sweep |
                                        rnnpool::kInt8SimdRnn2Sweep)) != 0;
      counts->simd_projections += (stages & (rnnpool::kInt8SimdRnn1Projection |
                                             rnnpool::kInt8SimdRnn2Projection)) != 0;
      rnnpool::Int8PlanOptions portable;
      portable.allow_simd = false;
      rnnpool::RnnPoolInt8Plan portable_plan;
      Exact<int8_t> y_portable(out_size);
      if (rnnpool::PrepareInt8Plan(p, portable, &portable_plan) != rnnpool::Status::kOk ||
          rnnpool::Int8PlanSimdStages(portable_plan) != 0) {
        std::printf("case %ld: the portable plan failed\n", index);
        return false;
      }
      rnnpool::RnnPoolInt8(portable_plan, x.data, batch, height, width, y_portable.data,
                           scratch.data);
      if (out_size > 0 && std::memcmp(y.data, y_portable.data, out_size) != 0) {
        std::printf("case %ld: SIMD stages (0x%x) differ from the portable plan\n", index,
                    static_cast<unsigned>(stages));
        return false;
      }
    }
    for (int b = 0; b < batch; ++b) {
      for (int i = 0; i < out_h; ++i) {
        for (int j = 0; j < out_w; ++j) {
          // The spec transcription is slow for the largest sizes: check a few.
          if (large && (i + j) > 0) continue;
          const int8_t* got = y.data + ((static_cast<size_t>(b) * out_h + i) * out_w + j) * out_c;
          const int top = i * s.stride_h - pad_top, left = j * s.stride_w - pad_left;
          spec::Patch(p, x.data + b * image_size, height, width, top, left, want.data);
          rnnpool::RnnPoolPatchInt8(plan, x.data + b * image_size, height, width, top, left,
                                    patch.data, scratch.data);
          if (std::memcmp(got, want.data, out_c) != 0 ||
              std::memcmp(patch.data, want.data, out_c) != 0) {
            std::printf("case %ld: int8 mismatch at b=%d i=%d j=%d (k=%d h1=%d h2=%d r=%d c=%d)\n",
                        index, b, i, j, s.in_channels, s.rnn1_units, s.rnn2_units, s.pool_h,
                        s.pool_w);
            return false;
          }
        }
      }
    }
    if (!large && Chance(0.5)) {
      ++counts->stems;
      if (!RunStemCase(index, plan, s, p.input_zero_point, &counts->simd_stems)) return false;
    }
  }
  // float.
  {
    Exact<float> x(in_size), y(out_size), patch(out_c);
    Exact<unsigned char> scratch(rnnpool::RnnPoolFloatScratchBytes(f.shape));
    std::normal_distribution<float> normal(0.0f, Chance(0.1) ? 50.0f : 1.0f);
    for (size_t i = 0; i < in_size; ++i) x.data[i] = normal(rng);
    rnnpool::RnnPoolFloat(f, x.data, batch, height, width, y.data, scratch.data);
    if (out_h > 0 && out_w > 0) {
      const int b = batch - 1, i = out_h - 1, j = out_w / 2;
      rnnpool::RnnPoolPatchFloat(f, x.data + b * image_size, height, width,
                                 i * s.stride_h - pad_top, j * s.stride_w - pad_left,
                                 patch.data, scratch.data);
      const float* got = y.data + ((static_cast<size_t>(b) * out_h + i) * out_w + j) * out_c;
      if (std::memcmp(got, patch.data, out_c * sizeof(float)) != 0) {
        std::printf("case %ld: float patch differs from the whole map\n", index);
        return false;
      }
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const long cases = argc > 1 ? std::atol(argv[1]) : 10000;
  const unsigned long seed = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 1;
  rng.seed(seed);
  Counts counts;
  for (long i = 0; i < cases; ++i) {
    if (!RunCase(i, &counts)) {
      std::printf("FAILED at case %ld (seed %lu)\n", i, seed);
      return 1;
    }
  }
  std::printf("OK %ld cases (seed %lu): %ld valid (%ld at a size limit, %ld int8 patches; "
              "AVX2 sweeps in %ld, projections in %ld; fused stem in %ld, of which AVX2 in %ld), "
              "%ld invalid rejected as expected\n",
              cases, seed, counts.valid, counts.large, counts.patches, counts.simd_sweeps,
              counts.simd_projections, counts.stems, counts.simd_stems, counts.invalid);
  return 0;
}
