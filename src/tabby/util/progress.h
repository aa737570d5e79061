// A Keras-like progress line on stderr:
//   epoch 3/20  32/32 ━━━━━━━━━━━━━━━━━━━━ 2s 61ms/step - accuracy: 0.7100 - loss: 0.5500
// On a terminal it redraws in place ('\r'); when stderr is a file or a pipe
// (CI logs) only the finished line is written, so logs stay readable.
#pragma once

#include <chrono>
#include <string>

namespace tabby {

class ProgressLine {
 public:
  // `prefix` is printed before the counter ("epoch 3/20"); `total` steps.
  ProgressLine(std::string prefix, int64_t total, std::string unit = "step");
  // Redraws (at most ~10 times a second) with `metrics` appended ("accuracy: 0.71 - loss: 0.55").
  void update(int64_t done, const std::string& metrics = {});
  // Writes the final line with the total time and `metrics`, and a newline.
  void finish(const std::string& metrics = {});
  double elapsed_seconds() const;

 private:
  std::string render(int64_t done, const std::string& metrics, bool final) const;

  std::string prefix_, unit_;
  int64_t total_;
  int64_t done_ = 0;
  bool interactive_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// "2s", "1m 05s", "1h 02m".
std::string format_duration(double seconds);

}  // namespace tabby
