// fit_axis_to_later_points (chart.h): pure arithmetic on the series, so it is
// built with or without cairo.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "tabby/report/chart.h"

namespace tabby::report {

bool fit_axis_to_later_points(LineChart& chart) {
  double later_max = 0, first_max = 0;
  bool have_later = false;
  for (const auto& s : chart.series) {
    bool first = true;
    for (size_t i = 0; i < s.y.size() && i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i]) || !std::isfinite(s.x[i])) continue;
      if (first) {
        first_max = std::max(first_max, s.y[i]);
        first = false;
      } else {
        later_max = std::max(later_max, s.y[i]);
        have_later = true;
      }
    }
  }
  if (!have_later || later_max <= 0 || first_max <= 2 * later_max) return false;
  chart.y_min = 0.0;
  chart.y_max = later_max * 1.1;
  const std::string note = fmt::format("first-epoch values up to {:.3g} lie above the axis", first_max);
  chart.subtitle = chart.subtitle.empty() ? note : chart.subtitle + "; " + note;
  return true;
}

}  // namespace tabby::report
