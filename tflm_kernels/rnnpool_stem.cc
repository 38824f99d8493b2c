/* The fused stem convolution + RNNPool (rnnpool_stem.h). */
#include "rnnpool_stem.h"

#include <cstring>

#include "rnnpool_core_internal.h"  // RNNPOOL_ARM_DSP, RNNPOOL_X86_SIMD

#if RNNPOOL_ARM_DSP
#include <arm_acle.h>
#endif

namespace rnnpool {
namespace {

constexpr size_t Align16(size_t bytes) { return (bytes + 15) & ~size_t{15}; }

// One output pixel's input window, kh * kw * in values, as int16 (x - zp_x,
// 0 where the window leaves the image: padding adds nothing), rounded up to
// a multiple of 4 entries for the DSP path's groups.
size_t WindowBytes(const StemShape& g) {
  const size_t taps = static_cast<size_t>(g.kernel_h) * g.kernel_w * g.in_channels;
  return Align16(((taps + 3) & ~size_t{3}) * sizeof(int16_t));
}

#if RNNPOOL_ARM_DSP
// Entry of tap t in the window: each group of 4 taps is stored (t0, t2, t1,
// t3), the order SXTB16 splits a word of four int8 weights into two int16
// pairs, so one SMLAD multiplies each pair.
constexpr uint8_t kLaneSlot[4] = {0, 2, 1, 3};
inline int32_t WindowSlot(int32_t t) { return (t & ~3) | kLaneSlot[t & 3]; }

// Sum over the window of window[t] * filter[t]: two SMLADs per 4 taps.
inline int32_t WindowDot(const int16_t* window, const int8_t* filter, int32_t taps) {
  const int32_t groups = taps >> 2;
  int32_t acc = 0;
  for (int32_t i = 0; i < groups; ++i) {
    uint32_t w, even_odd[2];
    std::memcpy(&w, filter + 4 * i, sizeof(w));  // LDR (unaligned allowed)
    std::memcpy(even_odd, window + 4 * i, sizeof(even_odd));
    acc = __smlad(static_cast<int32_t>(__sxtb16(w)), static_cast<int32_t>(even_odd[0]), acc);
    int32_t odd;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(odd) : "r"(w));  // bytes 1, 3
    acc = __smlad(odd, static_cast<int32_t>(even_odd[1]), acc);
  }
  for (int32_t t = groups << 2; t < taps; ++t) acc += window[WindowSlot(t)] * filter[t];
  return acc;
}
#else
inline int32_t WindowSlot(int32_t t) { return t; }

inline int32_t WindowDot(const int16_t* window, const int8_t* filter, int32_t taps) {
  int32_t acc = 0;
  for (int32_t t = 0; t < taps; ++t) acc += window[t] * filter[t];
  return acc;
}
#endif

size_t BandBytes(const StemShape& stem, const RnnPoolShape& shape, size_t elem) {
  return Align16(static_cast<size_t>(shape.pool_h) * stem.out_width * stem.out_channels * elem);
}

// int8: the band, then the convolution's window, then RNNPool's scratch.
size_t Int8BandAndWindowBytes(const StemShape& stem, const RnnPoolShape& shape) {
  return BandBytes(stem, shape, sizeof(int8_t)) + WindowBytes(stem);
}

// Runs rows of patches [begin, end) (counted over batch * H') one after
// another over a band holding the stem rows they read; `row_fn` computes one
// stem row, `patch` one RNNPool patch.
template <typename Elem, typename RowFn, typename PatchFn>
void BandedRows(const StemShape& g, const RnnPoolShape& s, const Elem* image, int32_t begin,
                int32_t end, Elem* output, void* scratch, size_t band_bytes, RowFn row_fn,
                PatchFn patch) {
  const int32_t height = g.out_height, width = g.out_width;
  const int32_t out_h = OutputSize(height, s.pool_h, s.stride_h, s.padding);
  const int32_t out_w = OutputSize(width, s.pool_w, s.stride_w, s.padding);
  const int32_t pad_top = PaddingBefore(height, s.pool_h, s.stride_h, s.padding);
  const int32_t pad_left = PaddingBefore(width, s.pool_w, s.stride_w, s.padding);
  const size_t row_elems = static_cast<size_t>(width) * g.out_channels;
  const size_t out_channels = 4 * static_cast<size_t>(s.rnn2_units);
  const size_t image_size = static_cast<size_t>(g.in_height) * g.in_width * g.in_channels;
  Elem* band = static_cast<Elem*>(scratch);
  void* rnnpool_scratch = static_cast<char*>(scratch) + band_bytes;
  int32_t first = 0, count = 0;  // the band holds stem rows [first, first + count)
  for (int32_t i = begin; i < end; ++i) {
    const int32_t b = i / out_h, oy = i % out_h;
    const Elem* one_image = image + static_cast<size_t>(b) * image_size;
    if (oy == 0 || i == begin) count = 0;  // a new image: nothing to keep
    const int32_t top = oy * s.stride_h - pad_top;
    int32_t lo = top < 0 ? 0 : top;
    int32_t hi = top + s.pool_h > height ? height : top + s.pool_h;
    if (hi < lo) hi = lo;
    // Patch rows move down, so the rows kept are the band's last ones.
    int32_t kept = 0;
    if (lo >= first && lo < first + count) {
      kept = first + count - lo;
      if (kept > hi - lo) kept = hi - lo;
      std::memmove(band, band + static_cast<size_t>(lo - first) * row_elems,
                   static_cast<size_t>(kept) * row_elems * sizeof(Elem));
    }
    for (int32_t row = lo + kept; row < hi; ++row) {
      row_fn(one_image, row, band + static_cast<size_t>(row - lo) * row_elems);
    }
    first = lo;
    count = hi - lo;
    for (int32_t ox = 0; ox < out_w; ++ox) {
      Elem* out = output + ((static_cast<size_t>(b) * out_h + oy) * out_w + ox) * out_channels;
      patch(band, count, width, top - lo, ox * s.stride_w - pad_left, out, rnnpool_scratch);
    }
  }
}

}  // namespace

StemShape StemShapeFor(int32_t in_height, int32_t in_width, int32_t in_channels,
                       int32_t out_channels, int32_t kernel_h, int32_t kernel_w,
                       int32_t stride_h, int32_t stride_w, Padding padding) {
  StemShape g;
  g.in_height = in_height;
  g.in_width = in_width;
  g.in_channels = in_channels;
  g.out_channels = out_channels;
  g.kernel_h = kernel_h;
  g.kernel_w = kernel_w;
  g.stride_h = stride_h;
  g.stride_w = stride_w;
  g.out_height = OutputSize(in_height, kernel_h, stride_h, padding);
  g.out_width = OutputSize(in_width, kernel_w, stride_w, padding);
  g.pad_top = PaddingBefore(in_height, kernel_h, stride_h, padding);
  g.pad_left = PaddingBefore(in_width, kernel_w, stride_w, padding);
  return g;
}

size_t StemRowInt8ScratchBytes(const StemShape& stem) { return WindowBytes(stem); }

size_t StemInt8SimdBytes(const StemShape& stem) {
#if RNNPOOL_X86_SIMD
  return internal::CpuHasAvx2() ? internal::StemSimdBytesAvx2(stem) : 0;
#else
  (void)stem;
  return 0;
#endif
}

bool PrepareStemInt8Simd(StemInt8Params* stem, void* storage) {
  stem->simd = nullptr;
#if RNNPOOL_X86_SIMD
  if (storage == nullptr || !internal::CpuHasAvx2() ||
      !internal::PrepareStemSimdAvx2(*stem, storage)) {
    return false;
  }
  stem->simd = storage;
  return true;
#else
  (void)storage;
  return false;
#endif
}

void StemRowInt8(const StemInt8Params& stem, const int8_t* image, int32_t row, int8_t* out,
                 void* scratch) {
#if RNNPOOL_X86_SIMD
  if (stem.simd != nullptr) {
    internal::StemRowInt8Avx2(stem, image, row, out, scratch);
    return;
  }
#endif
  const StemShape& g = stem.shape;
  const int32_t y0 = row * g.stride_h - g.pad_top;
  // The kernel rows / columns inside the image (the rest is padding).
  const internal::InsideSpan rows = internal::SpanInside(y0, g.kernel_h, g.in_height);
  const int32_t ky0 = rows.begin, ky1 = rows.end;
  const int32_t taps = g.kernel_h * g.kernel_w * g.in_channels;
  const int32_t row_taps = g.kernel_w * g.in_channels;
  int16_t* window = static_cast<int16_t*>(scratch);
  for (int32_t ox = 0; ox < g.out_width; ++ox) {
    const int32_t x0 = ox * g.stride_w - g.pad_left;
    const internal::InsideSpan cols = internal::SpanInside(x0, g.kernel_w, g.in_width);
    const int32_t kx0 = cols.begin, kx1 = cols.end;
    // The window once per pixel, shared by every output channel; zeros only
    // where it leaves the image.
    // (All entries up to the multiple of 4: the DSP layout puts the last
    // group's taps at slots that can lie past `taps`.)
    if (ky0 > 0 || ky1 < g.kernel_h || kx0 > 0 || kx1 < g.kernel_w) {
      for (int32_t t = 0; t < ((taps + 3) & ~3); ++t) window[t] = 0;
    }
    for (int32_t ky = ky0; ky < ky1; ++ky) {
      const int8_t* pixel =
          image + (static_cast<size_t>(y0 + ky) * g.in_width + x0 + kx0) * g.in_channels;
      const int32_t first = ky * row_taps + kx0 * g.in_channels;
      const int32_t count = (kx1 - kx0) * g.in_channels;
      for (int32_t i = 0; i < count; ++i) {
        window[WindowSlot(first + i)] = static_cast<int16_t>(pixel[i] + stem.input_offset);
      }
    }
    for (int32_t oc = 0; oc < g.out_channels; ++oc) {
      int32_t acc = WindowDot(window, stem.filter + static_cast<size_t>(oc) * taps, taps);
      // TFLite adds the bias in int32 (overflow undefined); saturate instead.
      const int64_t biased = static_cast<int64_t>(acc) + stem.bias[oc];
      acc = biased > INT32_MAX ? INT32_MAX : biased < INT32_MIN ? INT32_MIN
                                                                : static_cast<int32_t>(biased);
      acc = MultiplyByQuantizedMultiplier(acc, stem.multiplier[oc], stem.shift[oc]);
      acc += stem.output_offset;
      acc = acc < stem.activation_min ? stem.activation_min : acc;
      acc = acc > stem.activation_max ? stem.activation_max : acc;
      out[static_cast<size_t>(ox) * g.out_channels + oc] = static_cast<int8_t>(acc);
    }
  }
}

void StemRowFloat(const StemFloatParams& stem, const float* image, int32_t row, float* out) {
  const StemShape& g = stem.shape;
  const int32_t y0 = row * g.stride_h - g.pad_top;
  // The kernel rows / columns inside the image (the rest is padding).
  const internal::InsideSpan rows = internal::SpanInside(y0, g.kernel_h, g.in_height);
  const int32_t ky0 = rows.begin, ky1 = rows.end;
  const size_t filter_size = static_cast<size_t>(g.kernel_h) * g.kernel_w * g.in_channels;
  for (int32_t ox = 0; ox < g.out_width; ++ox) {
    const int32_t x0 = ox * g.stride_w - g.pad_left;
    const internal::InsideSpan cols = internal::SpanInside(x0, g.kernel_w, g.in_width);
    const int32_t kx0 = cols.begin, kx1 = cols.end;
    for (int32_t oc = 0; oc < g.out_channels; ++oc) {
      const float* filter = stem.filter + oc * filter_size;
      float total = 0.0f;
      for (int32_t ky = ky0; ky < ky1; ++ky) {
        const float* pixel =
            image + (static_cast<size_t>(y0 + ky) * g.in_width + x0 + kx0) * g.in_channels;
        const float* w = filter + (static_cast<size_t>(ky) * g.kernel_w + kx0) * g.in_channels;
        const int32_t taps = (kx1 - kx0) * g.in_channels;
        for (int32_t i = 0; i < taps; ++i) total += pixel[i] * w[i];
      }
      total += stem.bias[oc];
      total = total < stem.activation_min ? stem.activation_min : total;
      total = total > stem.activation_max ? stem.activation_max : total;
      out[static_cast<size_t>(ox) * g.out_channels + oc] = total;
    }
  }
}

size_t StemRnnPoolInt8ScratchBytes(const StemShape& stem, const RnnPoolShape& shape) {
  return Int8BandAndWindowBytes(stem, shape) + RnnPoolInt8ScratchBytes(shape);
}

size_t StemRnnPoolFloatScratchBytes(const StemShape& stem, const RnnPoolShape& shape) {
  return BandBytes(stem, shape, sizeof(float)) + RnnPoolFloatScratchBytes(shape);
}

int32_t StemRnnPoolRows(const StemShape& stem, const RnnPoolShape& shape, int32_t batch) {
  return batch * OutputSize(stem.out_height, shape.pool_h, shape.stride_h, shape.padding);
}

void StemRnnPoolInt8(const StemInt8Params& stem, const RnnPoolInt8Plan& plan,
                     const int8_t* image, int32_t batch, int8_t* output, void* scratch) {
  StemRnnPoolInt8Rows(stem, plan, image, 0, StemRnnPoolRows(stem.shape, Int8PlanShape(plan), batch),
                      output, scratch);
}

void StemRnnPoolInt8Rows(const StemInt8Params& stem, const RnnPoolInt8Plan& plan,
                         const int8_t* image, int32_t begin, int32_t end, int8_t* output,
                         void* scratch) {
  const RnnPoolShape& shape = Int8PlanShape(plan);
  void* window = static_cast<char*>(scratch) + BandBytes(stem.shape, shape, sizeof(int8_t));
  BandedRows(
      stem.shape, shape, image, begin, end, output, scratch,
      Int8BandAndWindowBytes(stem.shape, shape),
      [&stem, window](const int8_t* one_image, int32_t row, int8_t* out) {
        StemRowInt8(stem, one_image, row, out, window);
      },
      [&plan](const int8_t* band, int32_t h, int32_t w, int32_t top, int32_t left, int8_t* out,
              void* s) { RnnPoolPatchInt8(plan, band, h, w, top, left, out, s); });
}

void StemRnnPoolFloat(const StemFloatParams& stem, const RnnPoolFloatParams& params,
                      const float* image, int32_t batch, float* output, void* scratch) {
  StemRnnPoolFloatRows(stem, params, image, 0, StemRnnPoolRows(stem.shape, params.shape, batch),
                       output, scratch);
}

void StemRnnPoolFloatRows(const StemFloatParams& stem, const RnnPoolFloatParams& params,
                          const float* image, int32_t begin, int32_t end, float* output,
                          void* scratch) {
  BandedRows(
      stem.shape, params.shape, image, begin, end, output, scratch,
      BandBytes(stem.shape, params.shape, sizeof(float)),
      [&stem](const float* one_image, int32_t row, float* out) {
        StemRowFloat(stem, one_image, row, out);
      },
      [&params](const float* band, int32_t h, int32_t w, int32_t top, int32_t left, float* out,
                void* s) { RnnPoolPatchFloat(params, band, h, w, top, left, out, s); });
}

}  // namespace rnnpool
