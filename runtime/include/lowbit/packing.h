// Code ranges and bit-plane packing: the one place that knows where a code's bits go.
// Layouts are documented in docs/quantization.md ("Packed layout").
#pragma once

#include <cstddef>
#include <cstdint>

#include "lowbit/format.h"

namespace lowbit {

struct QuantType {
  uint8_t bits = 2;
  QuantKind kind = QuantKind::kUnsigned;

  int32_t min_code() const {
    switch (kind) {
      case QuantKind::kUnsigned: return 0;
      case QuantKind::kSigned: return -(1 << (bits - 1));
      case QuantKind::kSignedNarrow: return -(1 << (bits - 1)) + 1;
      case QuantKind::kBinary: return -1;
    }
    return 0;
  }
  int32_t max_code() const {
    switch (kind) {
      case QuantKind::kUnsigned: return (1 << bits) - 1;
      case QuantKind::kSigned:
      case QuantKind::kSignedNarrow: return (1 << (bits - 1)) - 1;
      case QuantKind::kBinary: return 1;
    }
    return 0;
  }
  // Number of thresholds that select among the codes of this type.
  int32_t threshold_count() const { return kind == QuantKind::kBinary ? 1 : max_code() - min_code(); }
  bool valid() const {
    if (bits < 1 || bits > kMaxBits) return false;
    switch (kind) {
      case QuantKind::kUnsigned: return true;
      case QuantKind::kSigned: return true;
      case QuantKind::kSignedNarrow: return bits >= 2;
      case QuantKind::kBinary: return bits == 1;
    }
    return false;
  }
  // Weight of bit plane p in the code's value (two's complement top plane is negative).
  int32_t plane_weight(int p) const {
    if (kind == QuantKind::kBinary) return 2;  // code = 2*b - 1
    if (kind != QuantKind::kUnsigned && p == bits - 1) return -(1 << p);
    return 1 << p;
  }
  // Constant added to the weighted plane sum: code = sum_p plane_weight(p)*b_p + plane_offset().
  int32_t plane_offset() const { return kind == QuantKind::kBinary ? -1 : 0; }

  // Code of the level-th smallest value (level 0 .. threshold_count()).
  int32_t level_to_code(int32_t level) const { return kind == QuantKind::kBinary ? 2 * level - 1 : min_code() + level; }
  int32_t max_abs_code() const { return -min_code() > max_code() ? -min_code() : max_code(); }

  // The bit pattern stored for a code, and back.
  uint32_t code_to_bits(int32_t code) const {
    if (kind == QuantKind::kBinary) return code > 0 ? 1u : 0u;
    return static_cast<uint32_t>(code) & ((1u << bits) - 1u);
  }
  int32_t bits_to_code(uint32_t pattern) const {
    if (kind == QuantKind::kBinary) return pattern & 1u ? 1 : -1;
    if (kind == QuantKind::kUnsigned) return static_cast<int32_t>(pattern);
    const uint32_t sign = 1u << (bits - 1);
    return static_cast<int32_t>(pattern ^ sign) - static_cast<int32_t>(sign);
  }
};

inline bool operator==(QuantType a, QuantType b) { return a.bits == b.bits && a.kind == b.kind; }
inline bool operator!=(QuantType a, QuantType b) { return !(a == b); }

inline size_t words_for(size_t channels) { return (channels + kWordBits - 1) / kWordBits; }

inline uint32_t get_bit(const uint32_t* words, size_t index) {
  return (words[index / kWordBits] >> (index % kWordBits)) & 1u;
}
inline void set_bit(uint32_t* words, size_t index, uint32_t bit) {
  const uint32_t mask = 1u << (index % kWordBits);
  uint32_t& w = words[index / kWordBits];
  w = bit ? (w | mask) : (w & ~mask);
}

// Copies `count` bits from src starting at bit src_pos to dst starting at bit dst_pos, up to one
// destination word per step (group and concat boundaries need not be word-aligned).
inline void copy_bits(const uint32_t* src, size_t src_pos, uint32_t* dst, size_t dst_pos, size_t count) {
  if (src_pos % kWordBits == 0 && dst_pos % kWordBits == 0) {  // the common case: whole words
    const size_t whole = count / kWordBits;
    for (size_t i = 0; i < whole; ++i) dst[dst_pos / kWordBits + i] = src[src_pos / kWordBits + i];
    src_pos += whole * kWordBits;
    dst_pos += whole * kWordBits;
    count -= whole * kWordBits;
  }
  while (count > 0) {
    const size_t sw = src_pos / kWordBits, sb = src_pos % kWordBits;
    const size_t dw = dst_pos / kWordBits, db = dst_pos % kWordBits;
    const size_t n = count < kWordBits - db ? count : kWordBits - db;
    uint64_t window = src[sw] >> sb;
    if (sb + n > kWordBits) window |= static_cast<uint64_t>(src[sw + 1]) << (kWordBits - sb);
    const uint32_t mask = n == kWordBits ? 0xFFFFFFFFu : (1u << n) - 1u;
    dst[dw] = (dst[dw] & ~(mask << db)) | ((static_cast<uint32_t>(window) & mask) << db);
    src_pos += n;
    dst_pos += n;
    count -= n;
  }
}

// Pixel-planes layout: a tensor of `pixels` x `channels` codes with `bits` planes.
struct PixelPlanes {
  size_t channels;
  int bits;
  size_t words_per_plane() const { return words_for(channels); }
  size_t words_per_pixel() const { return words_per_plane() * static_cast<size_t>(bits); }
  size_t plane_offset(size_t pixel, int plane) const {
    return pixel * words_per_pixel() + static_cast<size_t>(plane) * words_per_plane();
  }
};

// Kernel-planes layout of weights [O, KH, KW, Cg]: per output channel, per plane, KH*KW runs of words(Cg).
struct KernelPlanes {
  size_t kh, kw, cg;
  int bits;
  size_t words_per_tap() const { return words_for(cg); }
  size_t words_per_plane() const { return kh * kw * words_per_tap(); }
  size_t words_per_output() const { return words_per_plane() * static_cast<size_t>(bits); }
  size_t plane_offset(size_t o, int plane) const {
    return o * words_per_output() + static_cast<size_t>(plane) * words_per_plane();
  }
};

inline int32_t read_code(const uint32_t* plane0, size_t plane_stride, size_t index, QuantType q) {
  uint32_t pattern = 0;
  for (int p = 0; p < q.bits; ++p) pattern |= get_bit(plane0 + p * plane_stride, index) << p;
  return q.bits_to_code(pattern);
}
inline void write_code(uint32_t* plane0, size_t plane_stride, size_t index, QuantType q, int32_t code) {
  const uint32_t pattern = q.code_to_bits(code);
  for (int p = 0; p < q.bits; ++p) set_bit(plane0 + p * plane_stride, index, (pattern >> p) & 1u);
}

}  // namespace lowbit
