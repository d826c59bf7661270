// Small helpers the runtime tests share for naming and making quantization types.
#pragma once

#include <string>

#include "lowbit/packing.h"

namespace lowbit_test {

inline lowbit::QuantType make_quant(lowbit::QuantKind kind, int bits) {
  lowbit::QuantType q;
  q.kind = kind;
  q.bits = static_cast<uint8_t>(bits);
  return q;
}

// "u2", "s3", "sn2", "bin1": short names for test traces.
inline std::string qname(lowbit::QuantType q) {
  static const char* kinds[] = {"u", "s", "sn", "bin"};
  return kinds[static_cast<int>(q.kind)] + std::to_string(q.bits);
}

}  // namespace lowbit_test
