// SIGTERM and SIGINT as an event a server can wait for: the handler only
// writes a byte to a pipe (all a signal handler may safely do), and a thread
// reading the pipe calls back, outside signal context.
#pragma once

#include <functional>
#include <thread>

namespace tabby::server {

class StopSignals {
 public:
  // Installs the handlers; `on_signal(signal number)` runs on the watcher
  // thread for the first signal. A second one ends the process at once.
  explicit StopSignals(std::function<void(int)> on_signal);
  // Restores the default handlers and stops the watcher.
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  std::function<void(int)> on_signal_;
  std::thread watcher_;
};

}  // namespace tabby::server
