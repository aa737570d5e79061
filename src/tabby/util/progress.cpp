#include "tabby/util/progress.h"

#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

#include "tabby/util/log.h"

namespace tabby {

namespace {
constexpr int kBarWidth = 20;
}

std::string format_duration(double seconds) {
  if (seconds < 60) return fmt::format("{:.0f}s", seconds);
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  if (s < 3600) return fmt::format("{}m {:02d}s", s / 60, s % 60);
  return fmt::format("{}h {:02d}m", s / 3600, (s % 3600) / 60);
}

ProgressLine::ProgressLine(std::string prefix, int64_t total, std::string unit)
    : prefix_(std::move(prefix)),
      unit_(std::move(unit)),
      total_(total),
      interactive_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

double ProgressLine::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::string ProgressLine::render(int64_t done, const std::string& metrics, bool final) const {
  const int filled = total_ > 0 ? static_cast<int>(kBarWidth * done / total_) : kBarWidth;
  std::string bar;
  for (int i = 0; i < kBarWidth; ++i) bar += i < filled ? "━" : "─";
  const double elapsed = elapsed_seconds();
  const double per_step = done > 0 ? elapsed / static_cast<double>(done) : 0.0;
  std::string timing;
  if (final || done >= total_) {
    timing = format_duration(elapsed) + " " + fmt::format("{:.0f}ms/{}", per_step * 1000.0, unit_);
  } else {
    const double eta = per_step * static_cast<double>(total_ - done);
    timing = "ETA " + format_duration(eta) + " " + fmt::format("{:.0f}ms/{}", per_step * 1000.0, unit_);
  }
  std::string line = (prefix_.empty() ? "" : prefix_ + "  ") + fmt::format("{}/{} {} {}", done, total_, bar, timing);
  if (!metrics.empty()) line += " - " + metrics;
  return line;
}

void ProgressLine::update(int64_t done, const std::string& metrics) {
  done_ = done;
  if (!interactive_ || log::quiet()) return;
  auto now = std::chrono::steady_clock::now();
  if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  std::fprintf(stderr, "\r\033[K%s", render(done, metrics, false).c_str());
  std::fflush(stderr);
}

void ProgressLine::finish(const std::string& metrics) {
  if (finished_) return;
  finished_ = true;
  if (log::quiet()) return;
  const std::string line = render(done_ > 0 ? done_ : total_, metrics, true);
  if (interactive_) {
    std::fprintf(stderr, "\r\033[K%s\n", line.c_str());
    std::fflush(stderr);
  } else {
    log::info(line);
  }
}

}  // namespace tabby
