/* A bounds-checked reader of one flexbuffer map of numbers: the custom options
 * of the RNNPool op (docs/rnnpool_custom_op.md), without the flatbuffers C++
 * library (the delegate is built by `pip install`, where it is not present).
 *
 * Format (flatbuffers' FlexBuffers): the buffer ends with the root value, its
 * packed type byte (type << 2 | log2 width) and the root's byte width. A map
 * is an offset to its values vector; in front of the values sit the keys
 * vector's offset and byte width and the element count; after them one packed
 * type byte per value. Keys are offsets to NUL-terminated strings. Numbers are
 * stored inline at the map's width or, "indirect", behind an offset.
 */
#ifndef TFLM_KERNELS_LITERT_FLEXBUFFER_MAP_H_
#define TFLM_KERNELS_LITERT_FLEXBUFFER_MAP_H_

#include <cstddef>
#include <cstdint>

namespace rnnpool_litert {

struct FlexNumber {
  const char* key;  // points into the buffer (NUL-terminated, checked)
  bool is_int;      // int / uint / bool; else float
  int64_t int_value;
  double float_value;  // also set for ints
  bool int_overflow;   // a uint above INT64_MAX
};

enum class FlexStatus {
  kOk = 0,
  kMalformed,    // not a flexbuffer map within the buffer's bounds
  kNotANumber,   // a value that is not an int / uint / float / bool
  kTooMany,      // more entries than the caller's array holds
};

// Reads the map at the root of buffer[0, length) into entries[0, *count).
// `capacity` is the size of `entries`. On kNotANumber, *count is the index
// of the offending entry and entries[*count].key is set.
FlexStatus ReadFlexNumberMap(const uint8_t* buffer, size_t length,
                             FlexNumber* entries, int capacity, int* count);

}  // namespace rnnpool_litert

#endif  // TFLM_KERNELS_LITERT_FLEXBUFFER_MAP_H_
