// `validate_op` of tflm_kernels._rnnpool_core: rnnpool::ValidateRnnPoolOp
// (rnnpool_validate.h, the code TFLM's Prepare runs) for the host tools.
// converters/tflite_io/rnnpool_validation.py describes the op from the flatbuffer.
#include "validate_bindings.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstring>
#include <string>
#include <vector>

#include "rnnpool_validate.h"

namespace py = pybind11;

namespace {

// Values the Python side hands over are already typed; any mismatch here is a
// programming error of the caller, reported as TypeError by pybind11's casts.
std::vector<rnnpool::OptionValue> ToOptionValues(const py::list& entries,
                                                 std::vector<std::string>* keys) {
  keys->reserve(entries.size());  // c_str() pointers must stay valid
  std::vector<rnnpool::OptionValue> values;
  for (const py::handle& item : entries) {
    const auto entry = py::cast<py::tuple>(item);
    if (entry.size() != 3) throw py::value_error("option entries are (key, type, value)");
    rnnpool::OptionValue v{};
    keys->push_back(py::cast<std::string>(entry[0]));
    v.key = keys->back().c_str();
    v.type = static_cast<rnnpool::OptionType>(py::cast<int32_t>(entry[1]));
    switch (v.type) {
      case rnnpool::OptionType::kInt:
        v.int_value = py::cast<int64_t>(entry[2]);
        break;
      case rnnpool::OptionType::kUInt:
        v.uint_value = py::cast<uint64_t>(entry[2]);
        break;
      case rnnpool::OptionType::kFloat:
        v.float_value = py::cast<double>(entry[2]);
        break;
      default:
        break;
    }
    values.push_back(v);
  }
  return values;
}

// Keeps the dims alive while the validator reads them.
struct TensorList {
  std::vector<rnnpool::TensorDesc> descs;
  std::vector<std::vector<int32_t>> dims;
  std::vector<std::string> type_names;
  std::vector<std::vector<float>> channel_scales;
};

void ToTensorDescs(const py::list& tensors, TensorList* out) {
  out->dims.reserve(tensors.size());
  out->type_names.reserve(tensors.size());
  out->channel_scales.reserve(tensors.size());
  for (const py::handle& item : tensors) {
    rnnpool::TensorDesc d{};
    out->dims.emplace_back();
    out->type_names.emplace_back();
    out->channel_scales.emplace_back();
    if (!item.is_none()) {
      const auto t = py::cast<py::tuple>(item);
      if (t.size() != 10) {
        throw py::value_error("tensor descriptions are (type, type_name, dims, is_constant, "
                              "quantization, scale, zero_point, channel_scales, "
                              "quantized_dimension, channel_zero_points_zero)");
      }
      d.present = true;
      d.type = static_cast<rnnpool::TensorType>(py::cast<int32_t>(t[0]));
      out->type_names.back() = py::cast<std::string>(t[1]);
      d.type_name = out->type_names.back().c_str();
      out->dims.back() = py::cast<std::vector<int32_t>>(t[2]);
      d.rank = static_cast<int32_t>(out->dims.back().size());
      d.dims = out->dims.back().data();
      d.is_constant = py::cast<bool>(t[3]);
      d.quantization = static_cast<rnnpool::Quantization>(py::cast<int32_t>(t[4]));
      d.scale = py::cast<float>(t[5]);
      d.zero_point = py::cast<int32_t>(t[6]);
      out->channel_scales.back() = py::cast<std::vector<float>>(t[7]);
      d.channel_scales = out->channel_scales.back().data();
      d.num_channel_scales = static_cast<int32_t>(out->channel_scales.back().size());
      d.quantized_dimension = py::cast<int32_t>(t[8]);
      d.channel_zero_points_zero = py::cast<bool>(t[9]);
    }
    out->descs.push_back(d);
  }
}

py::tuple MultiplierTuple(const rnnpool::Multiplier& m) { return py::make_tuple(m.q, m.shift); }

py::object Table(rnnpool::Activation activation) {
  const int16_t* table = rnnpool::BuiltinTable(static_cast<int32_t>(activation));
  if (table == nullptr) return py::none();
  py::array_t<int16_t> out(rnnpool::kTableSize);
  std::memcpy(out.mutable_data(), table, rnnpool::kTableSize * sizeof(int16_t));
  return std::move(out);
}

// The kernel-params dict of python_bindings.cc, without the weight arrays.
py::dict ToDict(const rnnpool::ValidatedOp& op) {
  const rnnpool::RnnPoolShape& s = op.shape;
  py::dict d;
  d["is_int8"] = op.is_int8;
  d["pool_size"] = py::make_tuple(s.pool_h, s.pool_w);
  d["strides"] = py::make_tuple(s.stride_h, s.stride_w);
  d["padding"] = static_cast<int32_t>(s.padding);
  d["gate_activation"] = static_cast<int32_t>(s.gate_activation);
  d["update_activation"] = static_cast<int32_t>(s.update_activation);
  d["in_channels"] = s.in_channels;
  d["rnn1_units"] = s.rnn1_units;
  d["rnn2_units"] = s.rnn2_units;
  d["input_shape"] = op.has_stem
      ? py::make_tuple(op.batch, op.stem.shape.in_height, op.stem.shape.in_width,
                       op.stem.shape.in_channels)
      : py::make_tuple(op.batch, op.height, op.width, s.in_channels);
  d["has_stem"] = op.has_stem;
  if (op.has_stem) {
    const rnnpool::StemShape& g = op.stem.shape;
    py::dict stem;
    stem["kernel_size"] = py::make_tuple(g.kernel_h, g.kernel_w);
    stem["strides"] = py::make_tuple(g.stride_h, g.stride_w);
    stem["padding"] = op.stem.padding;
    stem["padding_before"] = py::make_tuple(g.pad_top, g.pad_left);
    stem["output_shape"] = py::make_tuple(op.batch, g.out_height, g.out_width, g.out_channels);
    stem["activation"] = op.stem.activation;
    if (op.is_int8) {
      stem["input_offset"] = op.stem.input_offset;
      stem["output_offset"] = op.stem.output_offset;
      stem["activation_min"] = op.stem.activation_min_int8;
      stem["activation_max"] = op.stem.activation_max_int8;
      stem["input_scale"] = op.stem.input_scale;
      stem["output_scale"] = op.stem.output_scale;
    } else {
      stem["activation_min"] = op.stem.activation_min;
      stem["activation_max"] = op.stem.activation_max;
    }
    d["stem"] = stem;
  }
  d["output_shape"] = py::make_tuple(op.batch, op.out_height, op.out_width, 4 * s.rnn2_units);
  d["scratch_bytes"] = op.scratch_bytes;
  py::dict cells[2];
  if (op.is_int8) {
    const rnnpool::RnnPoolInt8Params& p = op.int8_params;
    const rnnpool::Int8Cell* in[2] = {&p.rnn1, &p.rnn2};
    for (int i = 0; i < 2; ++i) {
      cells[i]["zeta_q14"] = in[i]->zeta_q14;
      cells[i]["nu_q14"] = in[i]->nu_q14;
      cells[i]["gate_table"] = Table(s.gate_activation);
      cells[i]["update_table"] = Table(s.update_activation);
      cells[i]["input_multiplier"] = MultiplierTuple(in[i]->input_multiplier);
      cells[i]["recurrent_multiplier"] = MultiplierTuple(in[i]->recurrent_multiplier);
      cells[i]["update_multiplier"] = MultiplierTuple(in[i]->update_multiplier);
      cells[i]["gate_activation_multiplier"] = MultiplierTuple(in[i]->gate_activation_multiplier);
      cells[i]["update_activation_multiplier"] =
          MultiplierTuple(in[i]->update_activation_multiplier);
    }
    d["input_zero_point"] = p.input_zero_point;
    d["output_zero_point"] = p.output_zero_point;
    d["output_multiplier"] = MultiplierTuple(p.output_multiplier);
  } else {
    const rnnpool::FloatCell* in[2] = {&op.float_params.rnn1, &op.float_params.rnn2};
    for (int i = 0; i < 2; ++i) {
      cells[i]["zeta_sigmoid"] = in[i]->zeta_sigmoid;
      cells[i]["nu_sigmoid"] = in[i]->nu_sigmoid;
    }
  }
  d["rnn1"] = cells[0];
  d["rnn2"] = cells[1];
  return d;
}

}  // namespace

void RegisterValidateOp(py::module_& m) {
  m.attr("OPTIONS_OK") = static_cast<int32_t>(rnnpool::OptionsStatus::kOk);
  m.attr("OPTIONS_MISSING") = static_cast<int32_t>(rnnpool::OptionsStatus::kMissing);
  m.attr("OPTIONS_MALFORMED") = static_cast<int32_t>(rnnpool::OptionsStatus::kMalformed);
  m.attr("MAX_OPTION_KEYS") = rnnpool::kMaxOptionKeys;
  m.def("validate_op", [](int32_t options_status, const py::list& entries,
                          const py::list& inputs, const py::list& outputs) {
    std::vector<std::string> keys;
    const std::vector<rnnpool::OptionValue> values = ToOptionValues(entries, &keys);
    const rnnpool::OpOptions options{static_cast<rnnpool::OptionsStatus>(options_status),
                                     values.data(), static_cast<int32_t>(values.size())};
    TensorList in, out;
    ToTensorDescs(inputs, &in);
    ToTensorDescs(outputs, &out);
    rnnpool::ValidatedOp op;
    char message[rnnpool::kMessageBytes];
    // Counts beyond the lists' lengths would make the validator read past them.
    if (!rnnpool::ValidateRnnPoolOp(options, in.descs.data(),
                                    static_cast<int32_t>(in.descs.size()), out.descs.data(),
                                    static_cast<int32_t>(out.descs.size()), &op, message,
                                    sizeof(message))) {
      throw py::value_error(message);
    }
    py::dict d = ToDict(op);
    if (op.has_stem && op.is_int8) {  // what the glue's Prepare keeps per channel
      const int32_t k = op.shape.in_channels;
      py::array_t<int32_t> q(k), shift(k);
      rnnpool::StemMultipliers(op, in.descs[9], q.mutable_data(), shift.mutable_data());
      py::dict stem = d["stem"];
      stem["multiplier"] = q;
      stem["shift"] = shift;
    }
    return d;
  }, py::arg("options_status"), py::arg("entries"), py::arg("inputs"), py::arg("outputs"),
     "rnnpool::ValidateRnnPoolOp: the validated op as a kernel-params dict (no weight "
     "arrays), or ValueError naming the key / tensor and what was expected.");
}
