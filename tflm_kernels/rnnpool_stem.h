/* The fused form of the RNNPool op (contract version 2): the convolution that
 * feeds RNNPool ("stem", with its folded BatchNorm and fused activation) is
 * computed inside the op, a band of rows at a time, so its output map is
 * never held whole. docs/rnnpool_custom_op.md ("Fused stem convolution").
 *
 * The convolution is TFLite's CONV_2D as TFLM's reference kernels compute it
 * (int8: reference_integer_ops::ConvPerChannel, per-channel requantisation
 * with MultiplyByQuantizedMultiplier; float: reference_ops::Conv, products
 * summed in (ky, kx, ci) order), so a fused op gives the same bits as the
 * CONV_2D -> RNNPool pair it replaces. NumPy oracle: rnnpool_keras/spec/stem_conv.py.
 *
 * Memory: the op keeps pool_h rows of the stem map (the rows one row of
 * patches reads); consecutive patch rows share their overlap (rows are
 * moved, not recomputed), so every stem pixel is computed once when
 * stride_h <= pool_h. Scratch: StemRnnPool{Int8,Float}ScratchBytes.
 */
#ifndef TFLM_KERNELS_RNNPOOL_STEM_H_
#define TFLM_KERNELS_RNNPOOL_STEM_H_

#include <cstddef>
#include <cstdint>

#include "rnnpool_core.h"

namespace rnnpool {

// Geometry of the stem convolution (dilation 1). Its output map
// [out_height, out_width, out_channels] is RNNPool's input (out_channels = k).
struct StemShape {
  int32_t in_height, in_width, in_channels;  // the image
  int32_t out_channels;                      // k
  int32_t kernel_h, kernel_w;
  int32_t stride_h, stride_w;
  int32_t pad_top, pad_left;                 // TFLite's rule, see StemShapeFor
  int32_t out_height, out_width;
};

// Fills the geometry of a convolution over an in_height x in_width image
// (TFLite's padding rule, the same as RNNPool's OutputSize / PaddingBefore).
StemShape StemShapeFor(int32_t in_height, int32_t in_width, int32_t in_channels,
                       int32_t out_channels, int32_t kernel_h, int32_t kernel_w,
                       int32_t stride_h, int32_t stride_w, Padding padding);

struct StemInt8Params {
  StemShape shape;
  const int8_t* filter;        // [out][kh][kw][in], zero point 0
  const int32_t* bias;         // [out], scale s_x * s_w[c]
  const int32_t* multiplier;   // [out] q of M_c = s_x * s_w[c] / s_stem
  const int32_t* shift;        // [out] shift of M_c
  int32_t input_offset;        // -zp_x
  int32_t output_offset;       // zp_stem (RNNPool's input zero point)
  int32_t activation_min;      // the fused activation's int8 range
  int32_t activation_max;
  // Optional (null: the portable row): the convolution's prepared AVX2 form,
  // set by PrepareStemInt8Simd on x86-64 hosts.
  const void* simd;
};

// Hosts (x86-64 with AVX2; not a TFLM build's concern): eight output channels
// per register, the filter kept as int16 pairs with the per-channel
// multipliers in the fast form of the RNNPool core. StemInt8SimdBytes: the
// storage it needs (0: no such form on this target or CPU).
// PrepareStemInt8Simd fills `storage` from the other fields of *stem and sets
// stem->simd, or returns false (the form does not apply: a bias or
// multiplier outside its bounds) and leaves stem->simd null. Same bits either
// way; `storage` must outlive the params.
size_t StemInt8SimdBytes(const StemShape& stem);
bool PrepareStemInt8Simd(StemInt8Params* stem, void* storage);

struct StemFloatParams {
  StemShape shape;
  const float* filter;  // [out][kh][kw][in]
  const float* bias;    // [out]
  float activation_min;
  float activation_max;
};

// One output row `row` of the convolution: [out_width][out_channels]. The
// int8 row takes StemRowInt8ScratchBytes of scratch (one pixel's window as
// int16, shared by the output channels; two-MAC SMLAD products on cores with
// the DSP extension), 4-byte aligned.
size_t StemRowInt8ScratchBytes(const StemShape& stem);
void StemRowInt8(const StemInt8Params& stem, const int8_t* image, int32_t row, int8_t* out,
                 void* scratch);
void StemRowFloat(const StemFloatParams& stem, const float* image, int32_t row, float* out);

// Scratch of the fused op: pool_h stem rows, (int8) one window of the
// convolution, then the RNNPool scratch (each part 16-byte aligned if the
// scratch is).
size_t StemRnnPoolInt8ScratchBytes(const StemShape& stem, const RnnPoolShape& shape);
size_t StemRnnPoolFloatScratchBytes(const StemShape& stem, const RnnPoolShape& shape);

// The fused op over a batch: image [batch, in_height, in_width, in_channels]
// -> [batch, H', W', 4 h2] with H' = OutputSize(stem.out_height, ...). Same
// values as RnnPool{Int8,Float} over the stem convolution's output map.
void StemRnnPoolInt8(const StemInt8Params& stem, const RnnPoolInt8Plan& plan,
                     const int8_t* image, int32_t batch, int8_t* output, void* scratch);
void StemRnnPoolFloat(const StemFloatParams& stem, const RnnPoolFloatParams& params,
                      const float* image, int32_t batch, float* output, void* scratch);

// The same for rows of patches [begin, end) only, counted over the batch's
// StemRnnPoolRows (row i: image i / H', output row i % H'); `output` is the
// whole batch's. Disjoint ranges on separate threads, each with its own
// scratch, give the whole map's bytes (ranges are computed independently: a
// range's first row computes all the stem rows it reads).
int32_t StemRnnPoolRows(const StemShape& stem, const RnnPoolShape& shape, int32_t batch);
void StemRnnPoolInt8Rows(const StemInt8Params& stem, const RnnPoolInt8Plan& plan,
                         const int8_t* image, int32_t begin, int32_t end, int8_t* output,
                         void* scratch);
void StemRnnPoolFloatRows(const StemFloatParams& stem, const RnnPoolFloatParams& params,
                          const float* image, int32_t begin, int32_t end, float* output,
                          void* scratch);

}  // namespace rnnpool

#endif  // TFLM_KERNELS_RNNPOOL_STEM_H_
