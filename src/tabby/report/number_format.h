// Numbers as reports and tables show them.
#pragma once

#include <cstdint>
#include <string>

namespace tabby::report {

// 1234567 -> "1,234,567"
std::string thousands(int64_t value);
// 0.9612 -> "96.12%"
std::string percent(double fraction);
// Four decimals, "-" for NaN or infinity.
std::string number4(double value);

}  // namespace tabby::report
