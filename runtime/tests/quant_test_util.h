// Small helpers the runtime tests share for naming and making quantization types.
#pragma once

#include <string>
#include <vector>

#include "lowbit/packing.h"

namespace lowbit_test {

inline lowbit::QuantType make_quant(lowbit::QuantKind kind, int bits) {
  lowbit::QuantType q;
  q.kind = kind;
  q.bits = static_cast<uint8_t>(bits);
  return q;
}

// Every valid quantization type: binary, then unsigned, signed and signed narrow of 1..4 bits.
inline std::vector<lowbit::QuantType> every_quant_type() {
  std::vector<lowbit::QuantType> v = {make_quant(lowbit::QuantKind::kBinary, 1)};
  for (int bits = 1; bits <= 4; ++bits) {
    v.push_back(make_quant(lowbit::QuantKind::kUnsigned, bits));
    v.push_back(make_quant(lowbit::QuantKind::kSigned, bits));
    if (bits >= 2) v.push_back(make_quant(lowbit::QuantKind::kSignedNarrow, bits));
  }
  return v;
}

// "u2", "s3", "sn2", "bin1": short names for test traces.
inline std::string qname(lowbit::QuantType q) {
  static const char* kinds[] = {"u", "s", "sn", "bin"};
  return kinds[static_cast<int>(q.kind)] + std::to_string(q.bits);
}

}  // namespace lowbit_test
