/* See flexbuffer_map.h. Every read is checked against [begin, end). */
#include "flexbuffer_map.h"

#include <cstring>

namespace rnnpool_litert {
namespace {

// FlexBuffers type codes.
constexpr int kFlexInt = 1;
constexpr int kFlexUInt = 2;
constexpr int kFlexFloat = 3;
constexpr int kFlexIndirectInt = 6;
constexpr int kFlexIndirectUInt = 7;
constexpr int kFlexIndirectFloat = 8;
constexpr int kFlexMap = 9;
constexpr int kFlexBool = 26;

class Reader {
 public:
  Reader(const uint8_t* begin, size_t length) : begin_(begin), end_(begin + length) {}

  bool Contains(const uint8_t* p, size_t n) const {
    return p >= begin_ && p <= end_ && static_cast<size_t>(end_ - p) >= n;
  }

  bool Unsigned(const uint8_t* p, int width, uint64_t* out) const {
    if (!Contains(p, width)) return false;
    uint64_t v = 0;
    for (int i = width - 1; i >= 0; --i) v = (v << 8) | p[i];  // little endian
    *out = v;
    return true;
  }

  bool Signed(const uint8_t* p, int width, int64_t* out) const {
    uint64_t u = 0;
    if (!Unsigned(p, width, &u)) return false;
    const int bits = 8 * width;
    if (bits < 64 && (u >> (bits - 1)) & 1) u |= ~uint64_t{0} << bits;
    *out = static_cast<int64_t>(u);
    return true;
  }

  bool Float(const uint8_t* p, int width, double* out) const {
    if (width == 4 && Contains(p, 4)) {
      float f;
      std::memcpy(&f, p, 4);
      *out = f;
      return true;
    }
    if (width == 8 && Contains(p, 8)) {
      double d;
      std::memcpy(&d, p, 8);
      *out = d;
      return true;
    }
    return false;
  }

  // The target of an offset stored at p (offsets point backwards).
  bool Follow(const uint8_t* p, int width, const uint8_t** out) const {
    uint64_t offset = 0;
    if (!Unsigned(p, width, &offset)) return false;
    if (offset > static_cast<uint64_t>(p - begin_)) return false;
    *out = p - offset;
    return true;
  }

  // A NUL-terminated string starting at p, inside the buffer.
  bool String(const uint8_t* p) const {
    if (!Contains(p, 1)) return false;
    return std::memchr(p, 0, end_ - p) != nullptr;
  }

 private:
  const uint8_t* begin_;
  const uint8_t* end_;
};

}  // namespace

FlexStatus ReadFlexNumberMap(const uint8_t* buffer, size_t length,
                             FlexNumber* entries, int capacity, int* count) {
  *count = 0;
  if (buffer == nullptr || length < 3) return FlexStatus::kMalformed;
  const Reader r(buffer, length);
  const int root_width = buffer[length - 1];
  const int root_type = buffer[length - 2];
  if (root_width != 1 && root_width != 2 && root_width != 4 && root_width != 8) {
    return FlexStatus::kMalformed;
  }
  if ((root_type >> 2) != kFlexMap || length < 2u + root_width) {
    return FlexStatus::kMalformed;
  }
  const uint8_t* root = buffer + length - 2 - root_width;
  const uint8_t* values = nullptr;
  if (!r.Follow(root, root_width, &values)) return FlexStatus::kMalformed;
  const int width = 1 << (root_type & 3);
  uint64_t size = 0, keys_width = 0;
  const uint8_t* keys = nullptr;
  if (values - buffer < 3 * width || !r.Unsigned(values - width, width, &size) ||
      !r.Unsigned(values - 2 * width, width, &keys_width) ||
      !r.Follow(values - 3 * width, width, &keys)) {
    return FlexStatus::kMalformed;
  }
  if (keys_width != 1 && keys_width != 2 && keys_width != 4 && keys_width != 8) {
    return FlexStatus::kMalformed;
  }
  const int kw = static_cast<int>(keys_width);
  uint64_t key_count = 0;
  if (keys - buffer < kw || !r.Unsigned(keys - kw, kw, &key_count) ||
      key_count != size || size > length ||
      !r.Contains(values, size * width + size) || !r.Contains(keys, size * kw)) {
    return FlexStatus::kMalformed;
  }
  if (size > static_cast<uint64_t>(capacity)) return FlexStatus::kTooMany;
  const uint8_t* types = values + size * width;
  for (uint64_t i = 0; i < size; ++i) {
    FlexNumber& e = entries[i];
    e = FlexNumber{};
    const uint8_t* key = nullptr;
    if (!r.Follow(keys + i * kw, kw, &key) || !r.String(key)) {
      return FlexStatus::kMalformed;
    }
    e.key = reinterpret_cast<const char*>(key);
    const int type = types[i] >> 2;
    const int own_width = 1 << (types[i] & 3);
    const uint8_t* slot = values + i * width;
    const uint8_t* at = slot;
    int at_width = width;
    if (type == kFlexIndirectInt || type == kFlexIndirectUInt ||
        type == kFlexIndirectFloat) {
      if (!r.Follow(slot, width, &at)) return FlexStatus::kMalformed;
      at_width = own_width;
    }
    bool ok = false;
    if (type == kFlexInt || type == kFlexIndirectInt) {
      e.is_int = true;
      ok = r.Signed(at, at_width, &e.int_value);
      e.float_value = static_cast<double>(e.int_value);
    } else if (type == kFlexUInt || type == kFlexIndirectUInt || type == kFlexBool) {
      uint64_t u = 0;
      e.is_int = true;
      ok = r.Unsigned(at, at_width, &u);
      e.int_overflow = u > static_cast<uint64_t>(INT64_MAX);
      e.int_value = e.int_overflow ? INT64_MAX : static_cast<int64_t>(u);
      e.float_value = static_cast<double>(u);
    } else if (type == kFlexFloat || type == kFlexIndirectFloat) {
      ok = r.Float(at, at_width, &e.float_value);
    } else {
      *count = static_cast<int>(i);
      return FlexStatus::kNotANumber;
    }
    if (!ok) return FlexStatus::kMalformed;
    *count = static_cast<int>(i) + 1;
  }
  return FlexStatus::kOk;
}

}  // namespace rnnpool_litert
