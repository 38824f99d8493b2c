/* See flexbuffer_map.h. Every read is checked against [begin, end). */
#include "flexbuffer_map.h"

#include <cstring>

namespace rnnpool_litert {
namespace {

// FlexBuffers type codes.
constexpr int kFlexInt = 1;
constexpr int kFlexUInt = 2;
constexpr int kFlexFloat = 3;
constexpr int kFlexKey = 4;
constexpr int kFlexString = 5;
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

rnnpool::OpOptions ReadFlexOptions(const uint8_t* buffer, size_t length,
                                   rnnpool::OptionValue* values, int capacity) {
  rnnpool::OpOptions options{rnnpool::OptionsStatus::kMalformed, values, 0};
  if (buffer == nullptr || length == 0) {
    options.status = rnnpool::OptionsStatus::kMissing;
    return options;
  }
  if (length < 3) return options;
  const Reader r(buffer, length);
  const int root_width = buffer[length - 1];
  const int root_type = buffer[length - 2];
  if (root_width != 1 && root_width != 2 && root_width != 4 && root_width != 8) {
    return options;
  }
  if ((root_type >> 2) != kFlexMap || length < 2u + root_width) return options;
  const uint8_t* root = buffer + length - 2 - root_width;
  const uint8_t* map = nullptr;
  if (!r.Follow(root, root_width, &map)) return options;
  const int width = 1 << (root_type & 3);
  uint64_t size = 0, keys_width = 0;
  const uint8_t* keys = nullptr;
  if (map - buffer < 3 * width || !r.Unsigned(map - width, width, &size) ||
      !r.Unsigned(map - 2 * width, width, &keys_width) ||
      !r.Follow(map - 3 * width, width, &keys)) {
    return options;
  }
  if (keys_width != 1 && keys_width != 2 && keys_width != 4 && keys_width != 8) {
    return options;
  }
  const int kw = static_cast<int>(keys_width);
  uint64_t key_count = 0;
  if (keys - buffer < kw || !r.Unsigned(keys - kw, kw, &key_count) ||
      key_count != size || size > length ||
      !r.Contains(map, size * width + size) || !r.Contains(keys, size * kw)) {
    return options;
  }
  options.status = rnnpool::OptionsStatus::kOk;
  options.count = static_cast<int32_t>(size);  // size <= length: fits
  if (size > static_cast<uint64_t>(capacity)) return options;  // rejected unread
  const uint8_t* types = map + size * width;
  for (uint64_t i = 0; i < size; ++i) {
    rnnpool::OptionValue& out = values[i];
    out = rnnpool::OptionValue();
    const uint8_t* key = nullptr;
    if (!r.Follow(keys + i * kw, kw, &key) || !r.String(key)) {
      options.status = rnnpool::OptionsStatus::kMalformed;
      return options;
    }
    out.key = reinterpret_cast<const char*>(key);
    const int type = types[i] >> 2;
    const int own_width = 1 << (types[i] & 3);
    const uint8_t* at = map + i * width;
    int at_width = width;
    if (type == kFlexIndirectInt || type == kFlexIndirectUInt ||
        type == kFlexIndirectFloat) {
      if (!r.Follow(at, width, &at)) {
        options.status = rnnpool::OptionsStatus::kMalformed;
        return options;
      }
      at_width = own_width;
    }
    bool ok = true;
    if (type == kFlexInt || type == kFlexIndirectInt) {
      out.type = rnnpool::OptionType::kInt;
      ok = r.Signed(at, at_width, &out.int_value);
    } else if (type == kFlexUInt || type == kFlexIndirectUInt) {
      out.type = rnnpool::OptionType::kUInt;
      ok = r.Unsigned(at, at_width, &out.uint_value);
    } else if (type == kFlexFloat || type == kFlexIndirectFloat) {
      out.type = rnnpool::OptionType::kFloat;
      ok = r.Float(at, at_width, &out.float_value);
    } else if (type == kFlexBool) {
      out.type = rnnpool::OptionType::kBool;
    } else if (type == kFlexKey || type == kFlexString) {
      out.type = rnnpool::OptionType::kString;
    } else {
      out.type = rnnpool::OptionType::kOther;
    }
    if (!ok) {
      options.status = rnnpool::OptionsStatus::kMalformed;
      return options;
    }
  }
  return options;
}

}  // namespace rnnpool_litert
