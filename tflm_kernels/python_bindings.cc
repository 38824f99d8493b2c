// pybind11 module tflm_kernels._rnnpool_core: NumPy access to the C++ core.
//
// The Python-friendly wrappers (QuantizedRNNPool, float params dicts) are in
// tflm_kernels/core.py; this file only converts dicts of arrays into the
// core's structs, checks array shapes, supplies scratch and calls the core.
// Unlike the core, this file uses exceptions (pybind11 needs them).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "rnnpool_core.h"
#include "rnnpool_stem.h"
#include "validate_bindings.h"

namespace py = pybind11;
using rnnpool::Activation;
using rnnpool::Multiplier;
using rnnpool::Padding;
using rnnpool::RnnPoolShape;
using rnnpool::Status;

namespace {

template <typename T>
using CArray = py::array_t<T, py::array::c_style | py::array::forcecast>;

// Keeps the converted arrays alive while the core reads them.
struct Holder {
  std::vector<py::object> keep;

  template <typename T>
  const T* Array(const py::dict& d, const char* key, std::vector<py::ssize_t> shape) {
    if (!d.contains(key)) throw py::key_error(std::string("missing ") + key);
    CArray<T> a = py::cast<CArray<T>>(d[key]);
    std::vector<py::ssize_t> got(a.shape(), a.shape() + a.ndim());
    if (got != shape) {
      std::string msg = std::string(key) + " has shape (";
      for (auto g : got) msg += std::to_string(g) + ",";
      msg += ") expected (";
      for (auto s : shape) msg += std::to_string(s) + ",";
      throw py::value_error(msg + ")");
    }
    keep.push_back(a);
    return a.data();
  }

  template <typename T>
  const T* OptionalArray(const py::dict& d, const char* key, std::vector<py::ssize_t> shape) {
    if (!d.contains(key) || d[key].is_none()) return nullptr;
    return Array<T>(d, key, std::move(shape));
  }
};

Multiplier GetMultiplier(const py::dict& d, const char* key) {
  if (!d.contains(key) || d[key].is_none()) return Multiplier{0, 0};
  auto pair = py::cast<std::tuple<int64_t, int64_t>>(d[key]);
  const int64_t q = std::get<0>(pair), shift = std::get<1>(pair);
  if (q < INT32_MIN || q > INT32_MAX || shift < INT32_MIN || shift > INT32_MAX) {
    throw py::value_error(std::string(key) + " does not fit int32");
  }
  return Multiplier{static_cast<int32_t>(q), static_cast<int32_t>(shift)};
}

int32_t GetInt(const py::dict& d, const char* key) {
  if (!d.contains(key)) throw py::key_error(std::string("missing ") + key);
  return py::cast<int32_t>(d[key]);
}

std::pair<int32_t, int32_t> GetPair(const py::dict& d, const char* key) {
  if (!d.contains(key)) throw py::key_error(std::string("missing ") + key);
  auto p = py::cast<std::pair<int32_t, int32_t>>(d[key]);
  return p;
}

int32_t MatrixDim(const py::dict& cell, const char* key, int axis) {
  py::array a = py::cast<py::array>(cell[key]);
  if (a.ndim() != 2) throw py::value_error(std::string(key) + " must be 2-D");
  return static_cast<int32_t>(a.shape(axis));
}

// Shape from {"pool_size", "strides", "padding", "gate_activation",
// "update_activation"} plus the matrices' shapes.
RnnPoolShape ParseShape(const py::dict& d) {
  py::dict rnn1 = d["rnn1"], rnn2 = d["rnn2"];
  RnnPoolShape s{};
  s.in_channels = MatrixDim(rnn1, "kernel", 0);
  s.rnn1_units = MatrixDim(rnn1, "kernel", 1);
  s.rnn2_units = MatrixDim(rnn2, "kernel", 1);
  if (MatrixDim(rnn2, "kernel", 0) != s.rnn1_units) {
    throw py::value_error("rnn2 kernel must have rnn1_units inputs");
  }
  std::tie(s.pool_h, s.pool_w) = GetPair(d, "pool_size");
  std::tie(s.stride_h, s.stride_w) = GetPair(d, "strides");
  s.padding = static_cast<Padding>(GetInt(d, "padding"));
  s.gate_activation = static_cast<Activation>(GetInt(d, "gate_activation"));
  s.update_activation = static_cast<Activation>(GetInt(d, "update_activation"));
  return s;
}

void Check(Status status) {
  if (status != Status::kOk) throw py::value_error(rnnpool::StatusMessage(status));
}

// ---------------------------------------------------------------------------
// Parameters.
// ---------------------------------------------------------------------------
struct FloatOp {
  Holder holder;
  rnnpool::RnnPoolFloatParams params{};
};

void ParseFloatCell(Holder& h, const py::dict& d, int32_t in, int32_t units,
                    rnnpool::FloatCell* cell) {
  cell->kernel = h.Array<float>(d, "kernel", {in, units});
  cell->recurrent_kernel = h.Array<float>(d, "recurrent_kernel", {units, units});
  cell->gate_bias = h.Array<float>(d, "gate_bias", {units});
  cell->update_bias = h.Array<float>(d, "update_bias", {units});
  cell->zeta_sigmoid = py::cast<float>(d["zeta_sigmoid"]);
  cell->nu_sigmoid = py::cast<float>(d["nu_sigmoid"]);
}

void ParseFloat(const py::dict& d, FloatOp* op) {
  op->params.shape = ParseShape(d);
  const RnnPoolShape& s = op->params.shape;
  Check(rnnpool::ValidateShape(s));
  ParseFloatCell(op->holder, d["rnn1"], s.in_channels, s.rnn1_units, &op->params.rnn1);
  ParseFloatCell(op->holder, d["rnn2"], s.rnn1_units, s.rnn2_units, &op->params.rnn2);
  Check(rnnpool::ValidateFloatParams(op->params));
}

struct Int8Op {
  Holder holder;
  rnnpool::RnnPoolInt8Params params{};
  rnnpool::RnnPoolInt8Plan plan;  // PrepareInt8Plan's, once per Python call
};

void ParseInt8Cell(Holder& h, const py::dict& d, int32_t in, int32_t units,
                   rnnpool::Int8Cell* cell) {
  cell->kernel = h.Array<int8_t>(d, "kernel", {in, units});
  cell->recurrent_kernel = h.Array<int8_t>(d, "recurrent_kernel", {units, units});
  cell->gate_bias = h.Array<int32_t>(d, "gate_bias", {units});
  cell->update_bias = h.Array<int32_t>(d, "update_bias", {units});
  cell->zeta_q14 = GetInt(d, "zeta_q14");
  cell->nu_q14 = GetInt(d, "nu_q14");
  cell->gate_table = h.OptionalArray<int16_t>(d, "gate_table", {rnnpool::kTableSize});
  cell->update_table = h.OptionalArray<int16_t>(d, "update_table", {rnnpool::kTableSize});
  cell->input_multiplier = GetMultiplier(d, "input_multiplier");
  cell->recurrent_multiplier = GetMultiplier(d, "recurrent_multiplier");
  cell->update_multiplier = GetMultiplier(d, "update_multiplier");
  cell->gate_activation_multiplier = GetMultiplier(d, "gate_activation_multiplier");
  cell->update_activation_multiplier = GetMultiplier(d, "update_activation_multiplier");
}

// portable: build the plan without SIMD stages (Int8PlanOptions::allow_simd).
void ParseInt8(const py::dict& d, Int8Op* op, bool portable = false) {
  op->params.shape = ParseShape(d);
  const RnnPoolShape& s = op->params.shape;
  Check(rnnpool::ValidateShape(s));
  ParseInt8Cell(op->holder, d["rnn1"], s.in_channels, s.rnn1_units, &op->params.rnn1);
  ParseInt8Cell(op->holder, d["rnn2"], s.rnn1_units, s.rnn2_units, &op->params.rnn2);
  op->params.input_zero_point = GetInt(d, "input_zero_point");
  op->params.output_zero_point = GetInt(d, "output_zero_point");
  op->params.output_multiplier = GetMultiplier(d, "output_multiplier");
  rnnpool::Int8PlanOptions options;
  options.allow_simd = !portable;
  Check(rnnpool::PrepareInt8Plan(op->params, options, &op->plan));
}

// The fused convolution (contract version 2): params["stem"] holds
// kernel_size, strides, padding (code), filter [k, kh, kw, in], bias [k] and,
// int8, multiplier / shift [k], input_offset, output_offset, activation_min /
// activation_max (float: activation_min / activation_max as floats).
rnnpool::StemShape ParseStemShape(const py::dict& stem, const py::array& x, int32_t k) {
  if (x.ndim() != 4) throw py::value_error("x must be NHWC (4-D)");
  for (int i = 0; i < 4; ++i) {
    if (x.shape(i) > INT32_MAX) throw py::value_error("x too large");
  }
  int32_t kh, kw, sh, sw;
  std::tie(kh, kw) = GetPair(stem, "kernel_size");
  std::tie(sh, sw) = GetPair(stem, "strides");
  const int32_t padding = GetInt(stem, "padding");
  if (kh < 1 || kw < 1 || sh < 1 || sw < 1 || (padding != 0 && padding != 1)) {
    throw py::value_error("stem kernel_size and strides must be >= 1, padding 0 or 1");
  }
  return rnnpool::StemShapeFor(static_cast<int32_t>(x.shape(1)), static_cast<int32_t>(x.shape(2)),
                               static_cast<int32_t>(x.shape(3)), k, kh, kw, sh, sw,
                               static_cast<Padding>(padding));
}

struct StemInt8 {
  Holder holder;
  rnnpool::StemInt8Params params{};
  std::vector<uint64_t> simd;  // PrepareStemInt8Simd's storage
};

// portable: leave the convolution on the portable row (no AVX2 form).
void ParseStemInt8(const py::dict& d, const py::array& x, int32_t k, bool portable,
                   StemInt8* out) {
  py::dict stem = d["stem"];
  rnnpool::StemInt8Params& p = out->params;
  p.shape = ParseStemShape(stem, x, k);
  const rnnpool::StemShape& g = p.shape;
  p.filter = out->holder.Array<int8_t>(stem, "filter", {k, g.kernel_h, g.kernel_w, g.in_channels});
  p.bias = out->holder.Array<int32_t>(stem, "bias", {k});
  p.multiplier = out->holder.Array<int32_t>(stem, "multiplier", {k});
  p.shift = out->holder.Array<int32_t>(stem, "shift", {k});
  p.input_offset = GetInt(stem, "input_offset");
  p.output_offset = GetInt(stem, "output_offset");
  p.activation_min = GetInt(stem, "activation_min");
  p.activation_max = GetInt(stem, "activation_max");
  if (!portable) {
    out->simd.assign((rnnpool::StemInt8SimdBytes(g) + 7) / 8, 0);
    rnnpool::PrepareStemInt8Simd(&p, out->simd.empty() ? nullptr : out->simd.data());
  }
}

struct StemFloat {
  Holder holder;
  rnnpool::StemFloatParams params{};
};

void ParseStemFloat(const py::dict& d, const py::array& x, int32_t k, StemFloat* out) {
  py::dict stem = d["stem"];
  rnnpool::StemFloatParams& p = out->params;
  p.shape = ParseStemShape(stem, x, k);
  const rnnpool::StemShape& g = p.shape;
  p.filter = out->holder.Array<float>(stem, "filter", {k, g.kernel_h, g.kernel_w, g.in_channels});
  p.bias = out->holder.Array<float>(stem, "bias", {k});
  p.activation_min = py::cast<float>(stem["activation_min"]);
  p.activation_max = py::cast<float>(stem["activation_max"]);
}

// Runs the fused op (or, conv_only, the convolution alone) over x.
template <typename T, typename Stem, typename Fn>
py::array_t<T> RunStem(const Stem& stem, const RnnPoolShape& s, const py::array& x_in,
                       bool conv_only, size_t scratch_bytes, Fn fn) {
  const rnnpool::StemShape& g = stem.params.shape;
  CArray<T> x = py::cast<CArray<T>>(x_in);
  const int32_t b = static_cast<int32_t>(x.shape(0));
  std::vector<py::ssize_t> shape{b, 0, 0, 0};
  if (conv_only) {
    shape = {b, g.out_height, g.out_width, g.out_channels};
  } else {
    shape = {b, rnnpool::OutputSize(g.out_height, s.pool_h, s.stride_h, s.padding),
             rnnpool::OutputSize(g.out_width, s.pool_w, s.stride_w, s.padding), 4 * s.rnn2_units};
  }
  if (g.out_height < 1 || g.out_width < 1 || shape[1] < 1 || shape[2] < 1) {
    throw py::value_error("the image is smaller than the stem convolution or the pool");
  }
  py::array_t<T> y(shape);
  std::vector<uint32_t> scratch((scratch_bytes + 3) / 4);
  T* out = y.mutable_data();
  const T* in = x.data();
  {
    py::gil_scoped_release release;
    fn(in, b, out, scratch.data());
  }
  return y;
}

// ---------------------------------------------------------------------------
// Kernels.
// ---------------------------------------------------------------------------
template <typename T>
CArray<T> CheckMap(const py::array& x_in, int32_t channels) {
  CArray<T> x = py::cast<CArray<T>>(x_in);
  if (x.ndim() != 4) throw py::value_error("x must be NHWC (4-D)");
  if (x.shape(3) != channels) {
    throw py::value_error("x has " + std::to_string(x.shape(3)) + " channels, the op expects " +
                          std::to_string(channels));
  }
  for (int i = 0; i < 3; ++i) {
    if (x.shape(i) > INT32_MAX) throw py::value_error("x too large");
  }
  return x;
}

template <typename T>
CArray<T> CheckImage(const py::array& x_in, int32_t channels) {
  CArray<T> x = py::cast<CArray<T>>(x_in);
  if (x.ndim() != 3) throw py::value_error("image must be HWC (3-D)");
  if (x.shape(2) != channels) throw py::value_error("image has the wrong channel count");
  return x;
}

template <typename T, typename Op, typename Fn>
py::array_t<T> RunMap(const Op& op, const py::array& x_in, Fn fn, size_t scratch_bytes) {
  const RnnPoolShape& s = op.params.shape;
  CArray<T> x = CheckMap<T>(x_in, s.in_channels);
  const int32_t b = static_cast<int32_t>(x.shape(0)), hh = static_cast<int32_t>(x.shape(1)),
                ww = static_cast<int32_t>(x.shape(2));
  const int32_t oh = rnnpool::OutputSize(hh, s.pool_h, s.stride_h, s.padding);
  const int32_t ow = rnnpool::OutputSize(ww, s.pool_w, s.stride_w, s.padding);
  py::array_t<T> y({static_cast<py::ssize_t>(b), static_cast<py::ssize_t>(oh),
                    static_cast<py::ssize_t>(ow), static_cast<py::ssize_t>(4 * s.rnn2_units)});
  std::vector<uint32_t> scratch((scratch_bytes + 3) / 4);
  T* out = y.mutable_data();
  const T* in = x.data();
  {
    py::gil_scoped_release release;
    fn(op.params, in, b, hh, ww, out, scratch.data());
  }
  return y;
}

template <typename T, typename Op, typename Fn>
py::array_t<T> RunPatch(const Op& op, const py::array& image_in, int32_t top, int32_t left,
                        Fn fn, size_t scratch_bytes) {
  const RnnPoolShape& s = op.params.shape;
  CArray<T> image = CheckImage<T>(image_in, s.in_channels);
  if (image.shape(0) > INT32_MAX || image.shape(1) > INT32_MAX) {
    throw py::value_error("image too large");
  }
  py::array_t<T> y(static_cast<py::ssize_t>(4 * s.rnn2_units));
  std::vector<uint32_t> scratch((scratch_bytes + 3) / 4);
  fn(op.params, image.data(), static_cast<int32_t>(image.shape(0)),
     static_cast<int32_t>(image.shape(1)), top, left, y.mutable_data(), scratch.data());
  return y;
}

// ---------------------------------------------------------------------------
// Vectorised fixed-point primitives (for tests against fixed_point.py).
// ---------------------------------------------------------------------------
py::array_t<int64_t> Srdhm(const CArray<int64_t>& a, const CArray<int64_t>& b) {
  if (a.size() != b.size()) throw py::value_error("size mismatch");
  py::array_t<int64_t> out(a.size());
  for (py::ssize_t i = 0; i < a.size(); ++i) {
    out.mutable_data()[i] = rnnpool::SaturatingRoundingDoublingHighMul(
        static_cast<int32_t>(a.data()[i]), static_cast<int32_t>(b.data()[i]));
  }
  return out;
}

py::array_t<int64_t> Rdbpot(const CArray<int64_t>& x, const CArray<int64_t>& n) {
  if (x.size() != n.size()) throw py::value_error("size mismatch");
  py::array_t<int64_t> out(x.size());
  for (py::ssize_t i = 0; i < x.size(); ++i) {
    if (n.data()[i] < 0 || n.data()[i] > 31) throw py::value_error("exponent not in [0, 31]");
    out.mutable_data()[i] = rnnpool::RoundingDivideByPOT(static_cast<int32_t>(x.data()[i]),
                                                         static_cast<int>(n.data()[i]));
  }
  return out;
}

py::array_t<int64_t> Mbqm(const CArray<int64_t>& x, const CArray<int64_t>& q,
                          const CArray<int64_t>& shift) {
  if (x.size() != q.size() || x.size() != shift.size()) throw py::value_error("size mismatch");
  py::array_t<int64_t> out(x.size());
  for (py::ssize_t i = 0; i < x.size(); ++i) {
    if (shift.data()[i] < -31 || shift.data()[i] > 30) {
      throw py::value_error("shift not in [-31, 30]");
    }
    out.mutable_data()[i] = rnnpool::MultiplyByQuantizedMultiplier(
        static_cast<int32_t>(x.data()[i]), static_cast<int32_t>(q.data()[i]),
        static_cast<int>(shift.data()[i]));
  }
  return out;
}

// The kernels' one-rounding form of MBQM (rnnpool::detail::Requantize, or
// Requantize16 for int16 inputs), element-wise, for tests.
py::array_t<int64_t> RequantizeArray(const CArray<int64_t>& x, int64_t q, int64_t shift,
                                     bool int16_input) {
  if (q < 0 || q > INT32_MAX || shift < -31 || shift > 30) {
    throw py::value_error("multiplier outside what ValidateInt8Params accepts");
  }
  const rnnpool::detail::Requant m = rnnpool::detail::MakeRequant(
      Multiplier{static_cast<int32_t>(q), static_cast<int32_t>(shift)});
  py::array_t<int64_t> out(x.size());
  for (py::ssize_t i = 0; i < x.size(); ++i) {
    const int64_t v = x.data()[i];
    if (int16_input && (v < INT16_MIN || v > INT16_MAX)) throw py::value_error("not int16");
    out.mutable_data()[i] = int16_input
                                ? rnnpool::detail::Requantize16(static_cast<int32_t>(v), m)
                                : rnnpool::detail::Requantize(static_cast<int32_t>(v), m);
  }
  return out;
}

}  // namespace

PYBIND11_MODULE(_rnnpool_core, m) {
  m.doc() = "C++ core of the RNNPool kernels (float and int8); see tflm_kernels/core.py";

  m.attr("MAX_INPUT_CHANNELS") = rnnpool::kMaxInputChannels;
  m.attr("MAX_UNITS") = rnnpool::kMaxUnits;
  m.attr("MAX_POOL") = rnnpool::kMaxPool;
  RegisterValidateOp(m);

  m.def("quantize_multiplier", [](double value) {
    int32_t q = 0;
    int shift = 0;
    Check(rnnpool::QuantizeMultiplier(value, &q, &shift));
    return py::make_tuple(q, shift);
  }, "Spec 2.1: (q, shift) of a real multiplier; ValueError if not in (0, 2^30).");
  m.def("srdhm", &Srdhm, "SaturatingRoundingDoublingHighMul, element-wise (int32 values).");
  m.def("rdbpot", &Rdbpot, "RoundingDivideByPOT, element-wise (int32 values).");
  m.def("mbqm", &Mbqm, "MultiplyByQuantizedMultiplier, element-wise (int32 values).");
  m.def("requantize", &RequantizeArray, py::arg("x"), py::arg("q"), py::arg("shift"),
        py::arg("int16_input") = false,
        "The kernels' one-rounding MBQM (detail::Requantize / Requantize16).");
  m.def("status_message", [](int32_t code) {
    return std::string(rnnpool::StatusMessage(static_cast<Status>(code)));
  });

  m.def("activation_int16", [](int32_t activation, const CArray<int16_t>& x,
                               py::object table, std::tuple<int32_t, int32_t> multiplier) {
    std::vector<int16_t> values(x.data(), x.data() + x.size());
    const int16_t* t = nullptr;
    CArray<int16_t> table_array;
    const auto act = static_cast<Activation>(activation);
    if ((act == Activation::kSigmoid || act == Activation::kTanh) && !table.is_none()) {
      table_array = py::cast<CArray<int16_t>>(table);
      if (table_array.size() != rnnpool::kTableSize) {
        throw py::value_error("activation_int16: table must have 513 int16 entries");
      }
      t = table_array.data();
    }
    if (values.size() > static_cast<size_t>(INT32_MAX)) throw py::value_error("x too large");
    const Status status = rnnpool::ActivationInt16(
        act, t, Multiplier{std::get<0>(multiplier), std::get<1>(multiplier)}, values.data(),
        static_cast<int32_t>(values.size()));
    if (status != Status::kOk) {
      throw py::value_error(std::string("activation_int16: ") + rnnpool::StatusMessage(status));
    }
    py::array_t<int16_t> out(static_cast<py::ssize_t>(values.size()));
    std::memcpy(out.mutable_data(), values.data(), values.size() * sizeof(int16_t));
    return out;
  }, py::arg("activation"), py::arg("x"), py::arg("table") = py::none(),
     py::arg("multiplier") = std::make_tuple(0, 0));

  m.def("cell_multipliers", [](double input_scale, double kernel_scale, double recurrent_scale,
                               double pre_scale, double state_scale, int32_t gate,
                               int32_t update) {
    rnnpool::Int8Cell cell{};
    Check(rnnpool::ComputeCellMultipliers(input_scale, kernel_scale, recurrent_scale, pre_scale,
                                          state_scale, static_cast<Activation>(gate),
                                          static_cast<Activation>(update), &cell));
    auto t = [](const Multiplier& mm) { return py::make_tuple(mm.q, mm.shift); };
    py::dict d;
    d["input_multiplier"] = t(cell.input_multiplier);
    d["recurrent_multiplier"] = t(cell.recurrent_multiplier);
    d["update_multiplier"] = t(cell.update_multiplier);
    d["gate_activation_multiplier"] = t(cell.gate_activation_multiplier);
    d["update_activation_multiplier"] = t(cell.update_activation_multiplier);
    return d;
  }, "ComputeCellMultipliers (the C++ twin of int8_params.cell_constants).");

  m.def("builtin_table", [](int32_t activation) -> py::object {
    const int16_t* table = rnnpool::BuiltinTable(activation);
    if (table == nullptr) return py::none();
    py::array_t<int16_t> out(rnnpool::kTableSize);
    std::memcpy(out.mutable_data(), table, rnnpool::kTableSize * sizeof(int16_t));
    return std::move(out);
  }, "The sigmoid (0) / tanh (1) table compiled into the core, or None.");

  m.def("output_size", [](int32_t n, int32_t window, int32_t stride, int32_t padding) {
    return rnnpool::OutputSize(n, window, stride, static_cast<Padding>(padding));
  });

  m.def("scratch_bytes_float", [](const py::dict& d) {
    const RnnPoolShape s = ParseShape(d);
    Check(rnnpool::ValidateShape(s));
    return rnnpool::RnnPoolFloatScratchBytes(s);
  });
  m.def("scratch_bytes_int8", [](const py::dict& d) {
    const RnnPoolShape s = ParseShape(d);
    Check(rnnpool::ValidateShape(s));
    return rnnpool::RnnPoolInt8ScratchBytes(s);
  });

  m.def("validate_int8", [](const py::dict& d) {
    Int8Op op;
    op.params.shape = ParseShape(d);
    const RnnPoolShape& s = op.params.shape;
    // Shape problems first (array shapes cannot be checked against bad sizes).
    Status status = rnnpool::ValidateShape(s);
    if (status == Status::kOk) {
      ParseInt8Cell(op.holder, d["rnn1"], s.in_channels, s.rnn1_units, &op.params.rnn1);
      ParseInt8Cell(op.holder, d["rnn2"], s.rnn1_units, s.rnn2_units, &op.params.rnn2);
      op.params.input_zero_point = GetInt(d, "input_zero_point");
      op.params.output_zero_point = GetInt(d, "output_zero_point");
      op.params.output_multiplier = GetMultiplier(d, "output_multiplier");
      status = rnnpool::ValidateInt8Params(op.params);
    }
    return py::make_tuple(static_cast<int32_t>(status), rnnpool::StatusMessage(status));
  }, "(status code, message) of ValidateInt8Params; 0 is ok.");
  m.def("int8_fast_path", [](const py::dict& d) {
    Int8Op op;
    ParseInt8(d, &op);
    return rnnpool::Int8PlanIsFast(op.plan);
  }, "Int8FastPathApplies: whether the int8 kernels take their fast path (same results).");

  m.def("rnnpool_float", [](const py::dict& d, const py::array& x) {
    FloatOp op;
    ParseFloat(d, &op);
    return RunMap<float>(op, x, rnnpool::RnnPoolFloat,
                         rnnpool::RnnPoolFloatScratchBytes(op.params.shape));
  });
  m.def("rnnpool_float_patch", [](const py::dict& d, const py::array& image, int32_t top,
                                  int32_t left) {
    FloatOp op;
    ParseFloat(d, &op);
    return RunPatch<float>(op, image, top, left, rnnpool::RnnPoolPatchFloat,
                           rnnpool::RnnPoolFloatScratchBytes(op.params.shape));
  });
  m.def("int8_simd_stages", [](const py::dict& d, bool portable) {
    Int8Op op;
    ParseInt8(d, &op, portable);
    const uint32_t stages = rnnpool::Int8PlanSimdStages(op.plan);
    py::dict out;
    out["rnn1_sweep"] = (stages & rnnpool::kInt8SimdRnn1Sweep) != 0;
    out["rnn2_sweep"] = (stages & rnnpool::kInt8SimdRnn2Sweep) != 0;
    out["rnn1_projection"] = (stages & rnnpool::kInt8SimdRnn1Projection) != 0;
    out["rnn2_projection"] = (stages & rnnpool::kInt8SimdRnn2Projection) != 0;
    return out;
  }, py::arg("params"), py::arg("portable") = false,
     "Int8PlanSimdStages as a dict: which stages the plan runs as SIMD (AVX2) code.");

  m.def("rnnpool_int8", [](const py::dict& d, const py::array& x, bool portable) {
    Int8Op op;
    ParseInt8(d, &op, portable);
    const auto run = [&op](const rnnpool::RnnPoolInt8Params&, const int8_t* in, int32_t b,
                           int32_t h, int32_t w, int8_t* out, void* scratch) {
      rnnpool::RnnPoolInt8(op.plan, in, b, h, w, out, scratch);
    };
    return RunMap<int8_t>(op, x, run, rnnpool::RnnPoolInt8ScratchBytes(op.params.shape));
  }, py::arg("params"), py::arg("x"), py::arg("portable") = false);
  m.def("rnnpool_int8_patch", [](const py::dict& d, const py::array& image, int32_t top,
                                 int32_t left, bool portable) {
    Int8Op op;
    ParseInt8(d, &op, portable);
    const auto run = [&op](const rnnpool::RnnPoolInt8Params&, const int8_t* in, int32_t h,
                           int32_t w, int32_t t, int32_t l, int8_t* out, void* scratch) {
      rnnpool::RnnPoolPatchInt8(op.plan, in, h, w, t, l, out, scratch);
    };
    return RunPatch<int8_t>(op, image, top, left, run,
                            rnnpool::RnnPoolInt8ScratchBytes(op.params.shape));
  }, py::arg("params"), py::arg("image"), py::arg("top"), py::arg("left"),
     py::arg("portable") = false);

  m.def("stem_rnnpool_int8", [](const py::dict& d, const py::array& x, bool portable,
                                bool conv_only) {
    Int8Op op;
    ParseInt8(d, &op, portable);
    StemInt8 stem;
    ParseStemInt8(d, x, op.params.shape.in_channels, portable, &stem);
    const rnnpool::StemInt8Params& p = stem.params;
    const rnnpool::StemShape& g = p.shape;
    const size_t scratch = rnnpool::StemRnnPoolInt8ScratchBytes(g, op.params.shape);
    return RunStem<int8_t>(stem, op.params.shape, x, conv_only, scratch,
                           [&](const int8_t* in, int32_t b, int8_t* out, void* s) {
      if (!conv_only) return rnnpool::StemRnnPoolInt8(p, op.plan, in, b, out, s);
      const size_t image = static_cast<size_t>(g.in_height) * g.in_width * g.in_channels;
      const size_t row = static_cast<size_t>(g.out_width) * g.out_channels;
      std::vector<uint32_t> window((rnnpool::StemRowInt8ScratchBytes(g) + 3) / 4);
      for (int32_t i = 0; i < b; ++i) {
        for (int32_t y = 0; y < g.out_height; ++y) {
          rnnpool::StemRowInt8(p, in + i * image, y, out + (i * g.out_height + y) * row,
                               window.data());
        }
      }
    });
  }, py::arg("params"), py::arg("x"), py::arg("portable") = false,
     py::arg("conv_only") = false,
     "The fused stem convolution + RNNPool (int8); conv_only: the convolution's map.");
  m.def("stem_int8_simd", [](const py::dict& d, const py::array& x) {
    Int8Op op;
    ParseInt8(d, &op);
    StemInt8 stem;
    ParseStemInt8(d, x, op.params.shape.in_channels, false, &stem);
    return stem.params.simd != nullptr;
  }, py::arg("params"), py::arg("x"),
     "Whether the int8 convolution runs its AVX2 form (PrepareStemInt8Simd) for x's shape.");
  m.def("stem_rnnpool_float", [](const py::dict& d, const py::array& x, bool conv_only) {
    FloatOp op;
    ParseFloat(d, &op);
    StemFloat stem;
    ParseStemFloat(d, x, op.params.shape.in_channels, &stem);
    const rnnpool::StemFloatParams& p = stem.params;
    const rnnpool::StemShape& g = p.shape;
    const size_t scratch = rnnpool::StemRnnPoolFloatScratchBytes(g, op.params.shape);
    return RunStem<float>(stem, op.params.shape, x, conv_only, scratch,
                          [&](const float* in, int32_t b, float* out, void* s) {
      if (!conv_only) return rnnpool::StemRnnPoolFloat(p, op.params, in, b, out, s);
      const size_t image = static_cast<size_t>(g.in_height) * g.in_width * g.in_channels;
      const size_t row = static_cast<size_t>(g.out_width) * g.out_channels;
      for (int32_t i = 0; i < b; ++i) {
        for (int32_t y = 0; y < g.out_height; ++y) {
          rnnpool::StemRowFloat(p, in + i * image, y, out + (i * g.out_height + y) * row);
        }
      }
    });
  }, py::arg("params"), py::arg("x"), py::arg("conv_only") = false,
     "The fused stem convolution + RNNPool (float); conv_only: the convolution's map.");
}
