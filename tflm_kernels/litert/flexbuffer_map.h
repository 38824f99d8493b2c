/* A bounds-checked reader of one flexbuffer map: the custom options
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

#include "rnnpool_validate.h"

namespace rnnpool_litert {

// Reads the map at the root of buffer[0, length) as the validator's typed
// option values (nothing converted: an int stays an int, a bool a bool).
// `values` holds `capacity` entries; a map with more keys is counted, not
// read (the validator rejects it). Status kMissing for no bytes, kMalformed
// for anything outside the buffer or a root that is not a map.
rnnpool::OpOptions ReadFlexOptions(const uint8_t* buffer, size_t length,
                                   rnnpool::OptionValue* values, int capacity);

}  // namespace rnnpool_litert

#endif  // TFLM_KERNELS_LITERT_FLEXBUFFER_MAP_H_
