// A `tabby serve` process for tests: started on a free port of 127.0.0.1,
// its stderr kept in a file, stopped (SIGTERM, then SIGKILL) when destroyed.
#pragma once

#include <httplib.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tabby/util/fs.h"

namespace tabby::testing {

class ServeProcess {
 public:
  // Starts `tabby serve ARGS --port 0` and waits (up to a minute) until it listens.
  ServeProcess(const std::vector<std::string>& args, const std::filesystem::path& log) : log_(log) {
    std::vector<std::string> argv = {std::getenv("TABBY_BIN") ? std::getenv("TABBY_BIN") : "tabby", "serve"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--port", "0", "--host", "127.0.0.1"});
    pid_ = fork();
    if (pid_ == 0) {
      // A test that dies must not leave its server holding ctest's pipes.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      FILE* err = std::fopen(log.c_str(), "w");
      if (err) dup2(fileno(err), 2);
      std::vector<char*> c;
      for (auto& a : argv) c.push_back(a.data());
      c.push_back(nullptr);
      execv(c[0], c.data());
      _exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    const std::regex listening("listening on http://127\\.0\\.0\\.1:([0-9]+)");
    // Given --grpc-port, the same line goes on "and grpc://127.0.0.1:PORT".
    const std::regex grpc_listening("listening on http://[^ ]+ and grpc://127\\.0\\.0\\.1:([0-9]+)");
    while (port_ == 0 && std::chrono::steady_clock::now() < deadline && alive()) {
      std::smatch m;
      const std::string text = stderr_text();
      if (std::regex_search(text, m, listening)) port_ = std::stoi(m[1]);
      if (std::regex_search(text, m, grpc_listening)) grpc_port_ = std::stoi(m[1]);
      if (port_ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  ~ServeProcess() {
    if (pid_ > 0 && alive()) {
      kill(pid_, SIGTERM);
      if (!wait_exit(std::chrono::seconds(20))) kill(pid_, SIGKILL);
      wait_exit(std::chrono::seconds(20));
    }
  }

  int port() const { return port_; }
  int grpc_port() const { return grpc_port_; }  // 0 without --grpc-port
  pid_t pid() const { return pid_; }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(60, 0);
    c.set_tcp_nodelay(true);  // a POST goes out as two writes (head, then body)
    return c;
  }
  std::string stderr_text() const {
    try {
      return read_file(log_);
    } catch (const std::exception&) {
      return "";
    }
  }
  bool alive() {
    if (exited_) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      exited_ = true;
      exit_status_ = status;
      return false;
    }
    return true;
  }
  // Waits for the process to end; false on timeout.
  bool wait_exit(std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (alive() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return !alive();
  }
  int exit_status() const { return exited_ && WIFEXITED(exit_status_) ? WEXITSTATUS(exit_status_) : -1; }
  // Polls /v2/health/ready until 200 (up to a minute).
  bool wait_ready() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline && alive()) {
      auto r = client().Get("/v2/health/ready");
      if (r && r->status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

 private:
  std::filesystem::path log_;
  pid_t pid_ = -1;
  int port_ = 0;
  int grpc_port_ = 0;
  bool exited_ = false;
  int exit_status_ = 0;
};

}  // namespace tabby::testing
