// Measured stack use on the emulated boards: the free stack below the caller
// is filled with a pattern, the code under test runs, and the lowest
// overwritten word is its deepest use. cortex_m.ld defines __stack_limit.
#ifndef TFLM_KERNELS_CORTEX_M_STACK_METER_H_
#define TFLM_KERNELS_CORTEX_M_STACK_METER_H_

#include <cstddef>
#include <cstdint>

extern "C" uint32_t __stack_limit;

namespace cortex_m {

constexpr uint32_t kStackPattern = 0xA5C3E10Fu;

// Paints the stack below this call's frame (16 bytes of margin for the loop
// itself, which pushes nothing); returns the top of the painted region. The
// figure then misses at most this function's small frame.
__attribute__((noinline)) inline uint32_t* PaintStack() {
  uint32_t* sp;
  __asm__ volatile("mov %0, sp" : "=r"(sp));
  for (uint32_t* p = &__stack_limit; p < sp - 4; ++p) *p = kStackPattern;
  return sp - 4;
}

// Bytes used below `painted_top` since PaintStack returned it.
inline size_t StackUsedBelow(const uint32_t* painted_top) {
  const uint32_t* p = &__stack_limit;
  while (p < painted_top && *p == kStackPattern) ++p;
  return static_cast<size_t>(reinterpret_cast<const char*>(painted_top) -
                             reinterpret_cast<const char*>(p));
}

}  // namespace cortex_m

#endif  // TFLM_KERNELS_CORTEX_M_STACK_METER_H_
