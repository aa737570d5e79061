// Axis ticks at "nice" values (steps of 1, 2 or 5 times a power of ten) and
// their labels. Pure arithmetic, shared by every chart, testable without cairo.
#pragma once

#include <string>
#include <vector>

namespace tabby::report {

struct Ticks {
  std::vector<double> values;  // ascending, all within [lo, hi]
  double step = 1;
  int decimals = 0;  // digits after the point that show every tick distinctly
};

// About `target_count` ticks within [lo, hi] (the 1-2-5 step whose count
// comes closest). With integers_only the step is
// a whole number (epochs, counts). Non-finite or reversed input gives no ticks.
Ticks nice_ticks(double lo, double hi, int target_count, bool integers_only = false);

// A tick label with `decimals` digits; never "-0".
std::string format_tick(double value, int decimals);

// A value label for bars and cells: whole numbers without decimals ("1234"),
// others with up to 3 significant decimals ("0.125", "12.5").
std::string format_value(double value);

}  // namespace tabby::report
