#include "tabby/report/number_format.h"

#include <fmt/format.h>

#include <cmath>

namespace tabby::report {

std::string thousands(int64_t v) {
  const std::string digits = std::to_string(v < 0 ? -v : v);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return (v < 0 ? "-" : "") + out;
}

std::string percent(double v) { return fmt::format("{:.2f}%", 100.0 * v); }

std::string number4(double v) { return std::isfinite(v) ? fmt::format("{:.4f}", v) : "-"; }

}  // namespace tabby::report
