// Runs RNNPool kernel cases on an emulated Cortex-M board: reads each case
// (parameters and input, written by cortex_m/cases.py; a file holds one or
// more) from a host file via semihosting, runs the kernel core once between
// the CountBegin / CountEnd markers (insn_count_plugin.c counts the
// instructions between them), appends the output to a host file, and prints
// the stack each run used.
//
//   kernel_runner <case file> <output file>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>

#include "rnnpool_core.h"
#include "rnnpool_stem.h"
#include "semihosting.h"
#include "stack_meter.h"

namespace {

// Bump allocation from a static arena: the core never allocates, the runner
// needs room only for one case.
alignas(16) unsigned char arena[320 * 1024];
size_t arena_used = 0;

void* Allocate(size_t bytes) {
  const size_t start = (arena_used + 15) & ~static_cast<size_t>(15);
  if (start + bytes > sizeof(arena)) {
    cortex_m::Write("runner: case too large for the arena\n");
    cortex_m::Exit(2);
  }
  arena_used = start + bytes;
  return arena + start;
}

FILE* case_file = nullptr;

// False at the end of the file (before a case's first field).
bool TryReadInt(int32_t* v) { return std::fread(v, sizeof(*v), 1, case_file) == 1; }

int32_t ReadInt() {
  int32_t v = 0;
  if (std::fread(&v, sizeof(v), 1, case_file) != 1) {
    cortex_m::Write("runner: case file truncated\n");
    cortex_m::Exit(2);
  }
  return v;
}

float ReadFloat() {
  const int32_t bits = ReadInt();
  float v;
  std::memcpy(&v, &bits, sizeof(v));
  return v;
}

// An array of n elements, padded to 4 bytes in the file.
template <typename T>
T* ReadArray(size_t n) {
  T* data = static_cast<T*>(Allocate(n * sizeof(T) + 4));
  const size_t bytes = n * sizeof(T), padded = (bytes + 3) & ~static_cast<size_t>(3);
  if (std::fread(data, 1, padded, case_file) != padded) {
    cortex_m::Write("runner: case file truncated\n");
    cortex_m::Exit(2);
  }
  return data;
}

rnnpool::Multiplier ReadMultiplier() {
  rnnpool::Multiplier m;
  m.q = ReadInt();
  m.shift = ReadInt();
  return m;
}

}  // namespace

// Markers for insn_count_plugin.c: never inlined, never merged.
extern "C" __attribute__((noinline, used)) void CountBegin() { __asm__ volatile(""); }
extern "C" __attribute__((noinline, used)) void CountEnd() { __asm__ volatile("nop"); }

namespace {

struct Geometry {
  int32_t batch, height, width, top, left;
};

template <typename Cell, typename Elem, typename Bias>
void ReadCellArrays(const rnnpool::RnnPoolShape& s, int32_t in, int32_t units, Cell* cell) {
  (void)s;
  cell->kernel = ReadArray<Elem>(static_cast<size_t>(in) * units);
  cell->recurrent_kernel = ReadArray<Elem>(static_cast<size_t>(units) * units);
  cell->gate_bias = ReadArray<Bias>(units);
  cell->update_bias = ReadArray<Bias>(units);
}

size_t OutputElements(const rnnpool::RnnPoolShape& s, const Geometry& g, bool patch) {
  if (patch) return 4 * static_cast<size_t>(s.rnn2_units);
  const size_t oh = rnnpool::OutputSize(g.height, s.pool_h, s.stride_h, s.padding);
  const size_t ow = rnnpool::OutputSize(g.width, s.pool_w, s.stride_w, s.padding);
  return static_cast<size_t>(g.batch) * oh * ow * 4 * s.rnn2_units;
}



// Allocates scratch and output, runs `kernel(output, scratch)` once between
// the markers; returns the stack it used (bytes).
template <typename Elem, typename Kernel>
size_t RunMeasured(size_t scratch_bytes, size_t output_elements, void** output,
                   const Kernel& kernel) {
  void* scratch = Allocate(scratch_bytes);
  Elem* out = static_cast<Elem*>(Allocate(output_elements * sizeof(Elem)));
  *output = out;
  const uint32_t* painted = cortex_m::PaintStack();
  CountBegin();
  kernel(out, scratch);
  CountEnd();
  return cortex_m::StackUsedBelow(painted);
}

// Runs the case whose magic number was just read; appends its output to
// out_file. Returns 0, or 1 if the parameters do not validate.
int RunCase(FILE* out_file) {
  const bool int8 = ReadInt() == 1;
  const int32_t mode = ReadInt();  // cases.py: 0 whole map, 1 patch, 2 fused stem
  const bool patch = mode == 1;
  const bool stem_mode = mode == 2 && int8;
  rnnpool::RnnPoolShape s{};
  s.in_channels = ReadInt();
  s.rnn1_units = ReadInt();
  s.rnn2_units = ReadInt();
  s.pool_h = ReadInt();
  s.pool_w = ReadInt();
  s.stride_h = ReadInt();
  s.stride_w = ReadInt();
  s.padding = static_cast<rnnpool::Padding>(ReadInt());
  s.gate_activation = static_cast<rnnpool::Activation>(ReadInt());
  s.update_activation = static_cast<rnnpool::Activation>(ReadInt());
  Geometry g;
  g.batch = ReadInt();
  g.height = ReadInt();
  g.width = ReadInt();
  g.top = ReadInt();
  g.left = ReadInt();
  size_t input_elements = static_cast<size_t>(g.batch) * g.height * g.width * s.in_channels;
  size_t output_elements = OutputElements(s, g, patch);
  size_t output_bytes = 0, scratch_bytes = 0, stack_bytes = 0;
  void* output = nullptr;
  rnnpool::Status status = rnnpool::Status::kOk;

  if (int8) {
    rnnpool::RnnPoolInt8Params p{};
    p.shape = s;
    p.input_zero_point = ReadInt();
    p.output_zero_point = ReadInt();
    p.output_multiplier = ReadMultiplier();
    bool tables[2][2];
    for (rnnpool::Int8Cell* cell : {&p.rnn1, &p.rnn2}) {
      cell->zeta_q14 = ReadInt();
      cell->nu_q14 = ReadInt();
      cell->input_multiplier = ReadMultiplier();
      cell->recurrent_multiplier = ReadMultiplier();
      cell->update_multiplier = ReadMultiplier();
      cell->gate_activation_multiplier = ReadMultiplier();
      cell->update_activation_multiplier = ReadMultiplier();
      const int index = cell == &p.rnn1 ? 0 : 1;
      tables[index][0] = ReadInt() != 0;
      tables[index][1] = ReadInt() != 0;
    }
    ReadCellArrays<rnnpool::Int8Cell, int8_t, int32_t>(s, s.in_channels, s.rnn1_units, &p.rnn1);
    ReadCellArrays<rnnpool::Int8Cell, int8_t, int32_t>(s, s.rnn1_units, s.rnn2_units, &p.rnn2);
    for (int index = 0; index < 2; ++index) {
      rnnpool::Int8Cell* cell = index == 0 ? &p.rnn1 : &p.rnn2;
      if (tables[index][0]) cell->gate_table = ReadArray<int16_t>(rnnpool::kTableSize);
      if (tables[index][1]) cell->update_table = ReadArray<int16_t>(rnnpool::kTableSize);
    }
    rnnpool::StemInt8Params stem{};
    if (stem_mode) {  // the image [batch, height, width, in] and the convolution
      const int32_t kh = ReadInt(), kw = ReadInt(), in = ReadInt();
      const int32_t sh = ReadInt(), sw = ReadInt(), padding = ReadInt();
      stem.shape = rnnpool::StemShapeFor(g.height, g.width, in, s.in_channels, kh, kw, sh, sw,
                                         static_cast<rnnpool::Padding>(padding));
      stem.input_offset = ReadInt();
      stem.output_offset = ReadInt();
      stem.activation_min = ReadInt();
      stem.activation_max = ReadInt();
      stem.filter = ReadArray<int8_t>(static_cast<size_t>(s.in_channels) * kh * kw * in);
      stem.bias = ReadArray<int32_t>(s.in_channels);
      stem.multiplier = ReadArray<int32_t>(s.in_channels);
      stem.shift = ReadArray<int32_t>(s.in_channels);
      input_elements = static_cast<size_t>(g.batch) * g.height * g.width * in;
      Geometry map = g;
      map.height = stem.shape.out_height;
      map.width = stem.shape.out_width;
      output_elements = OutputElements(s, map, false);
    }
    const int8_t* input = ReadArray<int8_t>(input_elements);
    // Prepare: the plan once, outside the counted region (as TFLM's Prepare).
    static rnnpool::RnnPoolInt8Plan plan;
    status = rnnpool::PrepareInt8Plan(p, &plan);
    if (status == rnnpool::Status::kOk) {
      scratch_bytes = stem_mode ? rnnpool::StemRnnPoolInt8ScratchBytes(stem.shape, s)
                                : rnnpool::RnnPoolInt8ScratchBytes(s);
      output_bytes = output_elements;
      stack_bytes = RunMeasured<int8_t>(scratch_bytes, output_elements, &output,
                                        [&](int8_t* out, void* scratch) {
        if (stem_mode) {
          rnnpool::StemRnnPoolInt8(stem, plan, input, g.batch, out, scratch);
        } else if (patch) {
          rnnpool::RnnPoolPatchInt8(plan, input, g.height, g.width, g.top, g.left, out, scratch);
        } else {
          rnnpool::RnnPoolInt8(plan, input, g.batch, g.height, g.width, out, scratch);
        }
      });
    }
  } else {
    rnnpool::RnnPoolFloatParams p{};
    p.shape = s;
    for (rnnpool::FloatCell* cell : {&p.rnn1, &p.rnn2}) {
      cell->zeta_sigmoid = ReadFloat();
      cell->nu_sigmoid = ReadFloat();
    }
    ReadCellArrays<rnnpool::FloatCell, float, float>(s, s.in_channels, s.rnn1_units, &p.rnn1);
    ReadCellArrays<rnnpool::FloatCell, float, float>(s, s.rnn1_units, s.rnn2_units, &p.rnn2);
    const float* input = ReadArray<float>(input_elements);
    status = rnnpool::ValidateFloatParams(p);
    if (status == rnnpool::Status::kOk) {
      scratch_bytes = rnnpool::RnnPoolFloatScratchBytes(s);
      output_bytes = output_elements * sizeof(float);
      stack_bytes = RunMeasured<float>(scratch_bytes, output_elements, &output,
                                       [&](float* out, void* scratch) {
        if (patch) {
          rnnpool::RnnPoolPatchFloat(p, input, g.height, g.width, g.top, g.left, out, scratch);
        } else {
          rnnpool::RnnPoolFloat(p, input, g.batch, g.height, g.width, out, scratch);
        }
      });
    }
  }
  if (status != rnnpool::Status::kOk) {
    std::printf("status %d %s\n", static_cast<int>(status), rnnpool::StatusMessage(status));
    return 1;
  }
  if (std::fwrite(output, 1, output_bytes, out_file) != output_bytes) {
    cortex_m::Write("runner: cannot write the output file\n");
    cortex_m::Exit(2);
  }
  std::printf("stack_bytes %u scratch_bytes %u\n", static_cast<unsigned>(stack_bytes),
              static_cast<unsigned>(scratch_bytes));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    cortex_m::Write("usage: kernel_runner <case file> <output file>\n");
    return 2;
  }
  case_file = std::fopen(argv[1], "rb");
  FILE* out_file = std::fopen(argv[2], "wb");
  if (case_file == nullptr || out_file == nullptr) {
    cortex_m::Write("runner: cannot open the case or the output file\n");
    return 2;
  }
  int result = 0, cases = 0;
  int32_t magic = 0;
  while (TryReadInt(&magic)) {
    if (magic != 0x43504E52) {  // "RNPC"
      cortex_m::Write("runner: not a case file\n");
      return 2;
    }
    arena_used = 0;  // one case at a time
    result |= RunCase(out_file);
    ++cases;
  }
  std::fclose(case_file);
  std::fclose(out_file);
  std::printf("cases %d\n", cases);
  return result;
}
