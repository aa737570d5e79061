#include "tabby/server/signals.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>

#include "tabby/util/error.h"

namespace tabby::server {

namespace {

int g_pipe[2] = {-1, -1};
std::atomic<int> g_signals{0};

void on_stop_signal(int sig) {
  if (g_signals.fetch_add(1) > 0) _exit(128 + sig);  // a second signal: no more waiting
  const char byte = static_cast<char>(sig);
  [[maybe_unused]] ssize_t n = write(g_pipe[1], &byte, 1);
}

void install(void (*handler)(int)) {
  struct sigaction sa {};
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
}

}  // namespace

StopSignals::StopSignals(std::function<void(int)> on_signal) : on_signal_(std::move(on_signal)) {
  if (pipe(g_pipe) != 0) throw Error("cannot create the pipe for signal handling");
  fcntl(g_pipe[1], F_SETFL, O_NONBLOCK);
  g_signals = 0;
  install(on_stop_signal);
  watcher_ = std::thread([this] {
    char byte = 0;
    ssize_t n;
    do {
      n = read(g_pipe[0], &byte, 1);
    } while (n < 0 && errno == EINTR);
    if (n == 1 && byte != 0) on_signal_(static_cast<unsigned char>(byte));
  });
}

StopSignals::~StopSignals() {
  install(SIG_DFL);
  const char wake = 0;  // not a signal: the watcher just returns
  [[maybe_unused]] ssize_t n = write(g_pipe[1], &wake, 1);
  watcher_.join();
  close(g_pipe[0]);
  close(g_pipe[1]);
  g_pipe[0] = g_pipe[1] = -1;
}

}  // namespace tabby::server
