// Reading the CPU's bfloat16 support from /proc/cpuinfo's flags.
#include <gtest/gtest.h>

#include "tabby/util/cpu_features.h"

namespace tabby {
namespace {

TEST(CpuFeatures, NativeBf16FromTheFirstProcessorsFlags) {
  const std::string avx2 = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse avx avx2 fma\n\n";
  const std::string genoa = "processor\t: 0\nflags\t\t: avx2 avx512f avx512_bf16 avx512_vnni\n";
  const std::string sapphire = "processor\t: 0\nflags\t\t: avx512f amx_bf16 amx_tile\n";
  EXPECT_FALSE(cpuinfo_has_native_bf16(avx2));
  EXPECT_TRUE(cpuinfo_has_native_bf16(genoa));
  EXPECT_TRUE(cpuinfo_has_native_bf16(sapphire));
  EXPECT_FALSE(cpuinfo_has_native_bf16(""));
  EXPECT_FALSE(cpuinfo_has_native_bf16("flags\t: avx512_bf16x\n"));  // whole flags only
  EXPECT_FALSE(cpuinfo_has_native_bf16(avx2 + "processor\t: 1\nflags\t\t: avx512_bf16\n"));
}

}  // namespace
}  // namespace tabby
