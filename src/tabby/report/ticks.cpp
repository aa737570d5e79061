// Nice-number axis ticks.
#include "tabby/report/ticks.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace tabby::report {

Ticks nice_ticks(double lo, double hi, int target_count, bool integers_only) {
  Ticks t;
  if (!std::isfinite(lo) || !std::isfinite(hi) || hi < lo) return t;
  target_count = std::max(target_count, 2);
  double range = hi - lo;
  if (range <= 0) range = std::max(std::abs(lo), 1.0);
  const double raw = range / target_count;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  // Of the 1-2-5 steps around the raw step, the one whose tick count comes
  // closest to the target (the smaller step on a tie: more labels read better
  // than too few).
  double step = magnitude;
  double best_miss = std::numeric_limits<double>::infinity();
  for (double factor : {1.0, 2.0, 5.0, 10.0}) {
    double candidate = factor * magnitude;
    if (integers_only) candidate = std::max(1.0, std::round(candidate));
    const double count = std::floor(range / candidate + 1e-9) + 1;
    const double miss = std::abs(count - target_count);
    if (miss < best_miss) {
      best_miss = miss;
      step = candidate;
    }
  }
  t.step = step;
  t.decimals = integers_only ? 0 : std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));

  // Index-based so accumulated rounding never adds or drops a tick.
  const double tolerance = step * 1e-9;
  const double first = std::ceil((lo - tolerance) / step);
  for (double i = first;; i += 1.0) {
    const double v = i * step;
    if (v > hi + tolerance) break;
    t.values.push_back(std::abs(v) < tolerance ? 0.0 : v);
    if (t.values.size() > 1000) break;  // defensive: never loop on degenerate input
  }
  return t;
}

std::string format_tick(double value, int decimals) {
  std::string s = fmt::format("{:.{}f}", value, std::clamp(decimals, 0, 12));
  if (s.find_first_not_of("-0.") == std::string::npos && s.front() == '-') s.erase(0, 1);
  return s;
}

std::string format_value(double value) {
  if (!std::isfinite(value)) return fmt::format("{}", value);
  if (value == std::round(value) && std::abs(value) < 1e15) return format_tick(value, 0);
  std::string s = fmt::format("{:.3f}", value);
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

}  // namespace tabby::report
