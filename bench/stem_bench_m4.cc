// The fused stem convolution + RNNPool against the unfused pair, on an emulated
// Cortex-M board (bench/bench_stem.py builds it with the kernel core and the
// parameters it writes to stem_bench_case.h). The image is generated here, so
// nothing is read from the host. One mode runs between the CountBegin /
// CountEnd markers, then the program prints the output's checksum, the bytes
// of every buffer it needed and the measured stack:
//
//   fused    StemRnnPoolInt8 over the image (pool_h stem rows held)
//   unfused  StemRowInt8 for every stem row into the whole map, then RnnPoolInt8
//   conv     the unfused convolution alone (the map is the output)
//   pool     RnnPoolInt8 alone, on a map computed before the markers
//
//   stem_bench_m4 fused|unfused|conv|pool [portable]
//
// It builds for x86-64 hosts too (no board: no stack measure), where
// bench_stem.py counts its instructions with callgrind; "portable" keeps the
// core off its AVX2 code there.
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "rnnpool_core.h"
#include "rnnpool_stem.h"
#include "stem_bench_case.h"

#if defined(__arm__)
#include "semihosting.h"
#include "stack_meter.h"
#else
// The host build (callgrind, collecting inside RunCounted only): no board,
// so no stack measure.
#include <cstdlib>
namespace cortex_m {
inline void Write(const char* text) { std::fputs(text, stderr); }
[[noreturn]] inline void Exit(int code) { std::exit(code); }
inline const uint32_t* PaintStack() { return nullptr; }
inline size_t StackUsedBelow(const uint32_t*) { return 0; }
}  // namespace cortex_m
#endif

// Markers for insn_count_plugin.c: never inlined, never merged.
extern "C" __attribute__((noinline, used)) void CountBegin() { __asm__ volatile(""); }
extern "C" __attribute__((noinline, used)) void CountEnd() { __asm__ volatile("nop"); }

namespace {

// Image, map, output and scratch of one mode, bump-allocated (16-byte aligned).
alignas(16) unsigned char arena[320 * 1024];
size_t arena_used = 0;

void* Allocate(size_t bytes) {
  const size_t start = (arena_used + 15) & ~static_cast<size_t>(15);
  if (start + bytes > sizeof(arena)) {
    cortex_m::Write("stem_bench: buffers too large for the arena\n");
    cortex_m::Exit(2);
  }
  arena_used = start + bytes;
  return arena + start;
}

// The image bench_stem.py reproduces: the top byte of a 32-bit LCG
// (Numerical Recipes' constants), one value per element in NHWC order.
void FillImage(int8_t* image, size_t n) {
  uint32_t state = stem_case::kImageSeed;
  for (size_t i = 0; i < n; ++i) {
    state = state * 1664525u + 1013904223u;
    image[i] = static_cast<int8_t>(state >> 24);
  }
}

// 32-bit FNV-1a of the output bytes.
uint32_t Checksum(const int8_t* data, size_t n) {
  uint32_t hash = 2166136261u;
  for (size_t i = 0; i < n; ++i) {
    hash ^= static_cast<uint8_t>(data[i]);
    hash *= 16777619u;
  }
  return hash;
}

rnnpool::Multiplier MultiplierOf(const int32_t (&m)[2]) {
  rnnpool::Multiplier out;
  out.q = m[0];
  out.shift = m[1];
  return out;
}

template <typename Cell>
rnnpool::Int8Cell CellOf() {
  rnnpool::Int8Cell cell{};
  cell.kernel = Cell::kKernel;
  cell.recurrent_kernel = Cell::kRecurrentKernel;
  cell.gate_bias = Cell::kGateBias;
  cell.update_bias = Cell::kUpdateBias;
  cell.zeta_q14 = Cell::kZetaQ14;
  cell.nu_q14 = Cell::kNuQ14;
  cell.gate_table = Cell::kGateTable;
  cell.update_table = Cell::kUpdateTable;
  cell.input_multiplier = MultiplierOf(Cell::kInputMultiplier);
  cell.recurrent_multiplier = MultiplierOf(Cell::kRecurrentMultiplier);
  cell.update_multiplier = MultiplierOf(Cell::kUpdateMultiplier);
  cell.gate_activation_multiplier = MultiplierOf(Cell::kGateActivationMultiplier);
  cell.update_activation_multiplier = MultiplierOf(Cell::kUpdateActivationMultiplier);
  return cell;
}

rnnpool::StemInt8Params StemParams() {
  namespace c = stem_case;
  rnnpool::StemInt8Params stem{};
  stem.shape = rnnpool::StemShapeFor(c::kImageHeight, c::kImageWidth, c::kImageChannels,
                                     c::kStemChannels, c::kStemKernelH, c::kStemKernelW,
                                     c::kStemStrideH, c::kStemStrideW,
                                     static_cast<rnnpool::Padding>(c::kStemPadding));
  stem.filter = c::kStemFilter;
  stem.bias = c::kStemBias;
  stem.multiplier = c::kStemMultiplier;
  stem.shift = c::kStemShift;
  stem.input_offset = c::kStemInputOffset;
  stem.output_offset = c::kStemOutputOffset;
  stem.activation_min = c::kStemActivationMin;
  stem.activation_max = c::kStemActivationMax;
  return stem;
}

rnnpool::RnnPoolInt8Params PoolParams() {
  namespace c = stem_case;
  rnnpool::RnnPoolInt8Params p{};
  p.shape.in_channels = c::kStemChannels;
  p.shape.rnn1_units = c::kRnn1Units;
  p.shape.rnn2_units = c::kRnn2Units;
  p.shape.pool_h = c::kPoolH;
  p.shape.pool_w = c::kPoolW;
  p.shape.stride_h = c::kStrideH;
  p.shape.stride_w = c::kStrideW;
  p.shape.padding = static_cast<rnnpool::Padding>(c::kPadding);
  p.shape.gate_activation = static_cast<rnnpool::Activation>(c::kGateActivation);
  p.shape.update_activation = static_cast<rnnpool::Activation>(c::kUpdateActivation);
  p.rnn1 = CellOf<c::Rnn1>();
  p.rnn2 = CellOf<c::Rnn2>();
  p.input_zero_point = c::kInputZeroPoint;
  p.output_zero_point = c::kOutputZeroPoint;
  p.output_multiplier = MultiplierOf(c::kOutputMultiplier);
  return p;
}

// `scratch` holds at least StemRowInt8ScratchBytes (the caller's scratch is larger).
void StemMap(const rnnpool::StemInt8Params& stem, const int8_t* image, int8_t* map,
             void* scratch) {
  const rnnpool::StemShape& g = stem.shape;
  const size_t row = static_cast<size_t>(g.out_width) * g.out_channels;
  for (int32_t y = 0; y < g.out_height; ++y) {
    rnnpool::StemRowInt8(stem, image, y, map + y * row, scratch);
  }
}

// The measured work of one mode (the host build's callgrind collects here).
__attribute__((noinline)) void RunCounted(bool fused, bool conv, bool pool,
                                          const rnnpool::StemInt8Params& stem,
                                          const rnnpool::RnnPoolInt8Plan& plan,
                                          const int8_t* image, int8_t* map, int8_t* output,
                                          void* scratch) {
  if (fused) {
    rnnpool::StemRnnPoolInt8(stem, plan, image, 1, output, scratch);
    return;
  }
  const rnnpool::StemShape& g = stem.shape;
  if (!pool) StemMap(stem, image, map, scratch);
  if (!conv) rnnpool::RnnPoolInt8(plan, map, 1, g.out_height, g.out_width, output, scratch);
}

}  // namespace

int main(int argc, char** argv) {
  const char* mode = argc >= 2 ? argv[1] : "";
  // "portable": the int8 core's portable code only (no AVX2; for x86 hosts).
  rnnpool::Int8PlanOptions options;
  options.allow_simd = !(argc == 3 && std::strcmp(argv[2], "portable") == 0);
  const bool fused = std::strcmp(mode, "fused") == 0;
  const bool unfused = std::strcmp(mode, "unfused") == 0;
  const bool conv = std::strcmp(mode, "conv") == 0;
  const bool pool = std::strcmp(mode, "pool") == 0;
  if (!(fused || unfused || conv || pool) || argc > 3) {
    cortex_m::Write("usage: stem_bench_m4 fused|unfused|conv|pool [portable]\n");
    return 2;
  }
  const rnnpool::StemInt8Params stem = StemParams();
  const rnnpool::RnnPoolInt8Params params = PoolParams();
  // Prepare: the plan once, outside the counted region (as TFLM's Prepare).
  static rnnpool::RnnPoolInt8Plan plan;
  const rnnpool::Status status = rnnpool::PrepareInt8Plan(params, options, &plan);
  if (status != rnnpool::Status::kOk) {
    std::printf("status %d %s\n", static_cast<int>(status), rnnpool::StatusMessage(status));
    return 1;
  }
  const rnnpool::StemShape& g = stem.shape;
  const rnnpool::RnnPoolShape& s = params.shape;
  const int32_t out_h = rnnpool::OutputSize(g.out_height, s.pool_h, s.stride_h, s.padding);
  const int32_t out_w = rnnpool::OutputSize(g.out_width, s.pool_w, s.stride_w, s.padding);
  const size_t image_bytes = static_cast<size_t>(g.in_height) * g.in_width * g.in_channels;
  const size_t map_bytes = static_cast<size_t>(g.out_height) * g.out_width * g.out_channels;
  const size_t output_bytes = static_cast<size_t>(out_h) * out_w * 4 * s.rnn2_units;
  // Unfused: the convolution's window, then RNNPool's scratch, in one buffer.
  const size_t row_scratch = rnnpool::StemRowInt8ScratchBytes(g);
  const size_t pool_scratch = rnnpool::RnnPoolInt8ScratchBytes(s);
  const size_t scratch_bytes = fused ? rnnpool::StemRnnPoolInt8ScratchBytes(g, s)
                               : conv ? row_scratch
                               : pool ? pool_scratch
                                      : (row_scratch > pool_scratch ? row_scratch : pool_scratch);

  int8_t* image = static_cast<int8_t*>(Allocate(image_bytes));
  FillImage(image, image_bytes);
  int8_t* map = fused ? nullptr : static_cast<int8_t*>(Allocate(map_bytes));
  int8_t* output = conv ? map : static_cast<int8_t*>(Allocate(output_bytes));
  void* scratch = Allocate(scratch_bytes);
  if (pool) {  // the map before the count, in a window buffer of its own
    StemMap(stem, image, map, Allocate(row_scratch));
  }

  const uint32_t* painted = cortex_m::PaintStack();
  CountBegin();
  RunCounted(fused, conv, pool, stem, plan, image, map, output, scratch);
  CountEnd();
  const size_t stack_bytes = cortex_m::StackUsedBelow(painted);

  std::printf("checksum %08lx\n",
              static_cast<unsigned long>(Checksum(output, conv ? map_bytes : output_bytes)));
  std::printf("image_bytes %u map_bytes %u output_bytes %u scratch_bytes %u stack_bytes %u\n",
              static_cast<unsigned>(image_bytes), static_cast<unsigned>(fused ? 0 : map_bytes),
              static_cast<unsigned>(conv ? 0 : output_bytes),
              static_cast<unsigned>(scratch_bytes), static_cast<unsigned>(stack_bytes));
  return 0;
}
