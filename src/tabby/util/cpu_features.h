// What the CPU computes natively, where it changes which settings make sense.
#pragma once

#include <string>

namespace tabby {

// True when a /proc/cpuinfo text lists AVX512-BF16 or AMX-BF16 among the first
// processor's flags.
bool cpuinfo_has_native_bf16(const std::string& cpuinfo);

// This machine's answer (false where /proc/cpuinfo cannot be read). Without
// native bfloat16, LibTorch emulates bf16 arithmetic on the CPU: measured 34x
// slower than fp32 for MobileNetV2 on an AVX2 CPU (bench/RESULTS.md).
bool cpu_has_native_bf16();

}  // namespace tabby
