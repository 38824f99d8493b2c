// Fused FastGRNN sweep for training RNNPool2D: a TensorFlow CPU op (forward)
// and its backward-through-time op, for float32.
//
// The maths is the float recurrence of rnnpool_keras/layers/fastgrnn.py
// (`final_state`), written in the same order:
//   pre_g = x_t + h @ U,  pre_u = pre_g + (b_update - b_gate)
//   z = gate(pre_g),  c = update(pre_u)
//   h' = z * (h - zeta * c) + (zeta + nu) * c      (h0 = 0)
// with zeta, nu already passed through the sigmoid. Sequences are independent,
// so they are processed in blocks of kLanes: one vector register holds one
// hidden unit of kLanes sequences, and blocks are spread over TF's thread pool.
// Compiled on first use by rnnpool_keras/layers/fused_sweep/build.py.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "Eigen/Core"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/util/work_sharder.h"

namespace rnnpool_keras {
namespace {

using ::tensorflow::DEVICE_CPU;
using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

constexpr int kLanes = 8;  // sequences per block: one AVX register of floats
// Blocks per unit of parallel work in the backward pass; each unit owns one
// partial sum of the weight gradients, added in a fixed order (deterministic).
constexpr int64_t kBlocksPerChunk = 64;

enum class Activation { kSigmoid, kTanh, kRelu, kQuantSigm, kQuantTanh };

template <typename... Parts>
absl::Status InvalidArgument(const Parts&... parts) {
  return absl::InvalidArgumentError(absl::StrCat(parts...));
}

bool ParseActivation(const std::string& name, Activation* out) {
  if (name == "sigmoid") *out = Activation::kSigmoid;
  else if (name == "tanh") *out = Activation::kTanh;
  else if (name == "relu") *out = Activation::kRelu;
  else if (name == "quantSigm") *out = Activation::kQuantSigm;
  else if (name == "quantTanh") *out = Activation::kQuantTanh;
  else return false;
  return true;
}

struct Cell {
  Activation gate, update;
  const float* recurrent;  // [units, units], row-major
  const float* update_offset;  // [units]
  float zeta, zeta_plus_nu;
  int units;
};

// The sweep for `kUnits` hidden units (Eigen::Dynamic: any count). A fixed
// count lets the compiler keep a block in registers and unroll the products.
template <int kUnits>
struct Sweep {
  // kLanes sequences x units; column j holds hidden unit j of every lane.
  using Block = Eigen::Array<float, kLanes, kUnits>;
  using Lanes = Eigen::Array<float, kLanes, 1>;
  using Rows = Eigen::Array<float, Eigen::Dynamic, kUnits, Eigen::RowMajor>;
  using FullRows = Eigen::Array<float, kLanes, kUnits, Eigen::RowMajor>;

  static void Apply(Activation f, const Block& x, Block* y) {
    switch (f) {
      case Activation::kSigmoid: *y = x.logistic(); break;
      case Activation::kTanh: *y = x.tanh(); break;
      case Activation::kRelu: *y = x.max(0.0f); break;
      case Activation::kQuantSigm: *y = ((x + 1.0f) / 2.0f).max(0.0f).min(1.0f); break;
      case Activation::kQuantTanh: *y = x.max(-1.0f).min(1.0f); break;
    }
  }

  // dy/dx from the input x and output y, as TensorFlow differentiates the
  // activations of rnnpool_keras/layers/activations.py (clip passes the gradient on
  // the closed interval, relu only where x > 0).
  static void Derivative(Activation f, const Block& x, const Block& y, Block* dy_dx) {
    switch (f) {
      case Activation::kSigmoid: *dy_dx = y * (1.0f - y); break;
      case Activation::kTanh: *dy_dx = 1.0f - y * y; break;
      case Activation::kRelu: *dy_dx = (x > 0.0f).template cast<float>(); break;
      case Activation::kQuantSigm: {
        const Block half = (x + 1.0f) / 2.0f;
        *dy_dx = ((half >= 0.0f) && (half <= 1.0f)).template cast<float>() * 0.5f;
        break;
      }
      case Activation::kQuantTanh:
        *dy_dx = ((x >= -1.0f) && (x <= 1.0f)).template cast<float>();
        break;
    }
  }

  // Rows [first, first + count) of a row-major [M, units] matrix into a block
  // (missing lanes zero).
  static void Load(const float* matrix, int64_t first, int count, int units, Block* block) {
    if (count == kLanes) {
      *block = Eigen::Map<const FullRows>(matrix + first * units, kLanes, units);
      return;
    }
    block->setZero();
    block->topRows(count) = Eigen::Map<const Rows>(matrix + first * units, count, units);
  }

  static void Store(const Block& block, int64_t first, int count, int units, float* matrix) {
    if (count == kLanes) {
      Eigen::Map<FullRows>(matrix + first * units, kLanes, units) = block;
      return;
    }
    Eigen::Map<Rows>(matrix + first * units, count, units) = block.topRows(count);
  }

  // out += in @ U: one multiply-add of a column of lanes per matrix entry.
  static void AddTimesMatrix(const Block& in, const float* u, int units, Block* out) {
    for (int i = 0; i < units; ++i) {
      for (int j = 0; j < units; ++j) out->col(j) += in.col(i) * u[i * units + j];
    }
  }

  // out += in @ U^T.
  static void AddTimesTransposed(const Block& in, const float* u, int units, Block* out) {
    for (int i = 0; i < units; ++i) {
      for (int j = 0; j < units; ++j) out->col(i) += in.col(j) * u[i * units + j];
    }
  }

  // One step's activations from the previous state (null at t = 0) and x_t.
  struct Step {
    Block gate_pre, update_pre, z, c;
    explicit Step(int units)
        : gate_pre(kLanes, units), update_pre(kLanes, units), z(kLanes, units),
          c(kLanes, units) {}
    void Compute(const Cell& cell, const Block& x, const Block* state) {
      gate_pre = x;
      if (state != nullptr) AddTimesMatrix(*state, cell.recurrent, cell.units, &gate_pre);
      for (int j = 0; j < cell.units; ++j) {
        update_pre.col(j) = gate_pre.col(j) + cell.update_offset[j];
      }
      Apply(cell.gate, gate_pre, &z);
      Apply(cell.update, update_pre, &c);
    }
  };

  // Forward over blocks [begin, end) of [steps, count, units] sequences x;
  // writes every step's state to `all` and the last one to `last`.
  static void Forward(const Cell& cell, const float* x, int64_t steps, int64_t count,
                      float* all, float* last, int64_t begin, int64_t end) {
    const int units = cell.units;
    Block input(kLanes, units), state(kLanes, units), next(kLanes, units);
    Step step(units);
    for (int64_t b = begin; b < end; ++b) {
      const int64_t first = b * kLanes;
      const int lanes = static_cast<int>(std::min<int64_t>(kLanes, count - first));
      for (int64_t t = 0; t < steps; ++t) {
        Load(x + t * count * units, first, lanes, units, &input);
        step.Compute(cell, input, t == 0 ? nullptr : &state);
        const Block& c = step.c;
        if (t == 0) {  // h0 = 0, as fastgrnn.final_state's first step
          next = cell.zeta_plus_nu * c - step.z * (cell.zeta * c);
        } else {
          next = step.z * (state - cell.zeta * c) + cell.zeta_plus_nu * c;
        }
        state = next;
        Store(state, first, lanes, units, all + t * count * units);
      }
      Store(state, first, lanes, units, last);
    }
  }

  // Backward-through-time over chunks [begin, end) of kBlocksPerChunk blocks:
  // writes dx, and per chunk the partial sums (dU [h * h], d_offset [h],
  // d_zeta, d_nu) to partials + chunk * partial_size.
  static void Backward(const Cell& cell, const float* x, const float* states,
                       const float* dfinal, int64_t steps, int64_t count, float* dx,
                       float* partials, int64_t partial_size, int64_t begin, int64_t end) {
    const int units = cell.units;
    const int64_t blocks = (count + kLanes - 1) / kLanes;
    Block input(kLanes, units), prev(kLanes, units), dh(kLanes, units),
        dz(kLanes, units), dc(kLanes, units), slope(kLanes, units),
        d_update(kLanes, units), d_pre(kLanes, units), dh_prev(kLanes, units);
    Step step(units);
    Eigen::Array<float, kLanes, Eigen::Dynamic> du_lanes(kLanes, units * units);
    Block doffset_lanes(kLanes, units);
    for (int64_t chunk = begin; chunk < end; ++chunk) {
      // Lane-wise sums over the chunk, reduced over lanes at the end.
      du_lanes.setZero();
      doffset_lanes.setZero();
      Lanes dzeta_lanes = Lanes::Zero(), dnu_lanes = Lanes::Zero();
      const int64_t last_block = std::min(blocks, (chunk + 1) * kBlocksPerChunk);
      for (int64_t b = chunk * kBlocksPerChunk; b < last_block; ++b) {
        const int64_t first = b * kLanes;
        const int lanes = static_cast<int>(std::min<int64_t>(kLanes, count - first));
        Load(dfinal, first, lanes, units, &dh);
        for (int64_t t = steps - 1; t >= 0; --t) {
          Load(x + t * count * units, first, lanes, units, &input);
          if (t > 0) {
            Load(states + (t - 1) * count * units, first, lanes, units, &prev);
          } else {
            prev.setZero();
          }
          step.Compute(cell, input, t == 0 ? nullptr : &prev);
          const Block& z = step.z;
          const Block& c = step.c;
          // h' = z * (h - zeta * c) + (zeta + nu) * c
          dz = dh * (prev - cell.zeta * c);
          dc = dh * (cell.zeta_plus_nu - cell.zeta * z);
          dzeta_lanes += (dh * c * (1.0f - z)).rowwise().sum();
          dnu_lanes += (dh * c).rowwise().sum();
          Derivative(cell.gate, step.gate_pre, z, &slope);
          d_pre = dz * slope;
          Derivative(cell.update, step.update_pre, c, &slope);
          d_update = dc * slope;
          d_pre += d_update;
          Store(d_pre, first, lanes, units, dx + t * count * units);
          doffset_lanes += d_update;
          if (t > 0) {
            for (int i = 0; i < units; ++i) {
              for (int j = 0; j < units; ++j) {
                du_lanes.col(i * units + j) += prev.col(i) * d_pre.col(j);
              }
            }
            dh_prev = dh * z;
            AddTimesTransposed(d_pre, cell.recurrent, units, &dh_prev);
            dh = dh_prev;
          }
        }
      }
      float* partial = partials + chunk * partial_size;
      for (int k = 0; k < units * units; ++k) partial[k] = du_lanes.col(k).sum();
      for (int j = 0; j < units; ++j) partial[units * units + j] = doffset_lanes.col(j).sum();
      partial[units * units + units] = dzeta_lanes.sum();
      partial[units * units + units + 1] = dnu_lanes.sum();
    }
  }
};

// Calls Sweep<units>::Forward / Backward for the unit counts compiled fixed,
// Sweep<Dynamic> for the others.
#define RNNPOOL_DISPATCH_UNITS(units, method, ...)                      \
  switch (units) {                                                      \
    case 4: Sweep<4>::method(__VA_ARGS__); break;                       \
    case 8: Sweep<8>::method(__VA_ARGS__); break;                       \
    case 16: Sweep<16>::method(__VA_ARGS__); break;                     \
    default: Sweep<Eigen::Dynamic>::method(__VA_ARGS__); break;         \
  }

absl::Status ReadCell(OpKernelContext* ctx, Activation gate, Activation update,
                      Cell* cell) {
  const Tensor& sequences = ctx->input(0);
  const Tensor& recurrent = ctx->input(1);
  const Tensor& offset = ctx->input(2);
  const Tensor& zeta = ctx->input(3);
  const Tensor& nu = ctx->input(4);
  if (sequences.dims() != 3 || sequences.dim_size(0) < 1) {
    return InvalidArgument("sequences must be [T >= 1, M, units], got ",
                           sequences.shape().DebugString());
  }
  const int64_t units = sequences.dim_size(2);
  if (recurrent.shape() != TensorShape({units, units})) {
    return InvalidArgument("recurrent_kernel must be [", units, ", ", units, "], got ",
                           recurrent.shape().DebugString());
  }
  if (offset.shape() != TensorShape({units})) {
    return InvalidArgument("update_offset must be [", units, "], got ",
                           offset.shape().DebugString());
  }
  if (zeta.dims() != 0 || nu.dims() != 0) {
    return InvalidArgument("zeta and nu must be scalars");
  }
  cell->gate = gate;
  cell->update = update;
  cell->recurrent = recurrent.flat<float>().data();
  cell->update_offset = offset.flat<float>().data();
  cell->zeta = zeta.scalar<float>()();
  cell->zeta_plus_nu = cell->zeta + nu.scalar<float>()();
  cell->units = static_cast<int>(units);
  return absl::OkStatus();
}

class SweepBase : public OpKernel {
 public:
  explicit SweepBase(OpKernelConstruction* ctx) : OpKernel(ctx) {
    std::string gate, update;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("gate_activation", &gate));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("update_activation", &update));
    OP_REQUIRES(ctx, ParseActivation(gate, &gate_),
                InvalidArgument("unknown gate_activation ", gate));
    OP_REQUIRES(ctx, ParseActivation(update, &update_),
                InvalidArgument("unknown update_activation ", update));
  }

  void Compute(OpKernelContext* ctx) final {
    Cell cell;
    OP_REQUIRES_OK(ctx, ReadCell(ctx, gate_, update_, &cell));
    const Tensor& sequences = ctx->input(0);
    Run(ctx, cell, sequences, sequences.dim_size(0), sequences.dim_size(1));
  }

 protected:
  // The op's work once its cell is read; sequences are [steps, count, units].
  virtual void Run(OpKernelContext* ctx, const Cell& cell, const Tensor& sequences,
                   int64_t steps, int64_t count) = 0;

  // Runs work(begin, end) over `units` units of work on TF's intra-op pool.
  template <typename Work>
  void Parallel(OpKernelContext* ctx, int64_t units, int64_t cost_per_unit, Work work) {
    auto* pool = ctx->device()->tensorflow_cpu_worker_threads();
    tensorflow::Shard(pool->num_threads, pool->workers, units, cost_per_unit, work);
  }

  Activation gate_, update_;
};

// Inputs: sequences [T, M, h] (x_t @ W + b_gate), recurrent_kernel [h, h],
// update_offset [h], zeta, nu (after the sigmoid). Outputs: final_state [M, h]
// and states [T, M, h] (every step's state, for the gradient).
class FastGrnnSweepOp : public SweepBase {
 public:
  using SweepBase::SweepBase;

  void Run(OpKernelContext* ctx, const Cell& cell, const Tensor& sequences,
           int64_t steps, int64_t count) override {
    const int units = cell.units;
    Tensor* final_state = nullptr;
    Tensor* states = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({count, units}), &final_state));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, sequences.shape(), &states));
    const float* x = sequences.flat<float>().data();
    float* all = states->flat<float>().data();
    float* last = final_state->flat<float>().data();
    const int64_t blocks = (count + kLanes - 1) / kLanes;
    Parallel(ctx, blocks, steps * units * (units + 8) * kLanes,
             [&](int64_t begin, int64_t end) {
      RNNPOOL_DISPATCH_UNITS(units, Forward, cell, x, steps, count, all, last, begin, end);
    });
  }
};

// Inputs: the forward op's five inputs, its `states` output and the gradient
// of `final_state` [M, h]. Outputs: gradients of sequences [T, M, h],
// recurrent_kernel [h, h], update_offset [h], zeta and nu (scalars).
class FastGrnnSweepGradOp : public SweepBase {
 public:
  using SweepBase::SweepBase;

  void Run(OpKernelContext* ctx, const Cell& cell, const Tensor& sequences,
           int64_t steps, int64_t count) override {
    const Tensor& states_in = ctx->input(5);
    const Tensor& grad_final = ctx->input(6);
    const int units = cell.units;
    OP_REQUIRES(ctx, states_in.shape() == sequences.shape(),
                InvalidArgument("states must have the shape of sequences"));
    OP_REQUIRES(ctx, grad_final.shape() == TensorShape({count, units}),
                InvalidArgument("grad_final_state must be [M, units]"));
    Tensor *d_sequences, *d_recurrent, *d_offset, *d_zeta, *d_nu;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, sequences.shape(), &d_sequences));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({units, units}), &d_recurrent));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({units}), &d_offset));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(3, TensorShape({}), &d_zeta));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(4, TensorShape({}), &d_nu));

    const float* x = sequences.flat<float>().data();
    const float* states = states_in.flat<float>().data();
    const float* dfinal = grad_final.flat<float>().data();
    float* dx = d_sequences->flat<float>().data();
    const int64_t blocks = (count + kLanes - 1) / kLanes;
    const int64_t chunks = (blocks + kBlocksPerChunk - 1) / kBlocksPerChunk;
    const int64_t partial_size = units * units + units + 2;
    std::vector<float> partials(chunks * partial_size, 0.0f);
    float* partial_data = partials.data();
    Parallel(ctx, chunks, kBlocksPerChunk * steps * units * (3 * units + 16) * kLanes,
             [&](int64_t begin, int64_t end) {
      RNNPOOL_DISPATCH_UNITS(units, Backward, cell, x, states, dfinal, steps, count, dx,
                             partial_data, partial_size, begin, end);
    });

    // Chunk partials added in chunk order: the result does not depend on threads.
    std::vector<double> total(partial_size, 0.0);
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      for (int64_t k = 0; k < partial_size; ++k) total[k] += partials[chunk * partial_size + k];
    }
    float* du = d_recurrent->flat<float>().data();
    float* doffset = d_offset->flat<float>().data();
    for (int k = 0; k < units * units; ++k) du[k] = static_cast<float>(total[k]);
    for (int j = 0; j < units; ++j) doffset[j] = static_cast<float>(total[units * units + j]);
    d_zeta->scalar<float>()() = static_cast<float>(total[units * units + units]);
    d_nu->scalar<float>()() = static_cast<float>(total[units * units + units + 1]);
  }
};

constexpr char kActivations[] = "{'sigmoid', 'tanh', 'relu', 'quantSigm', 'quantTanh'}";

REGISTER_OP("RnnpoolFastgrnnSweep")
    .Input("sequences: float")
    .Input("recurrent_kernel: float")
    .Input("update_offset: float")
    .Input("zeta: float")
    .Input("nu: float")
    .Output("final_state: float")
    .Output("states: float")
    .Attr(std::string("gate_activation: ") + kActivations)
    .Attr(std::string("update_activation: ") + kActivations)
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle sequences;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 3, &sequences));
      c->set_output(0, c->Matrix(c->Dim(sequences, 1), c->Dim(sequences, 2)));
      c->set_output(1, sequences);
      return absl::OkStatus();
    })
    .Doc("FastGRNN over [T, M, h] time-major sequences from h0 = 0 (rnnpool_keras).");

REGISTER_OP("RnnpoolFastgrnnSweepGrad")
    .Input("sequences: float")
    .Input("recurrent_kernel: float")
    .Input("update_offset: float")
    .Input("zeta: float")
    .Input("nu: float")
    .Input("states: float")
    .Input("grad_final_state: float")
    .Output("grad_sequences: float")
    .Output("grad_recurrent_kernel: float")
    .Output("grad_update_offset: float")
    .Output("grad_zeta: float")
    .Output("grad_nu: float")
    .Attr(std::string("gate_activation: ") + kActivations)
    .Attr(std::string("update_activation: ") + kActivations)
    .SetShapeFn([](InferenceContext* c) {
      for (int i = 0; i < 5; ++i) c->set_output(i, c->input(i));
      return absl::OkStatus();
    })
    .Doc("Backward-through-time of RnnpoolFastgrnnSweep.");

REGISTER_KERNEL_BUILDER(Name("RnnpoolFastgrnnSweep").Device(DEVICE_CPU), FastGrnnSweepOp);
REGISTER_KERNEL_BUILDER(Name("RnnpoolFastgrnnSweepGrad").Device(DEVICE_CPU),
                        FastGrnnSweepGradOp);

}  // namespace
}  // namespace rnnpool_keras
