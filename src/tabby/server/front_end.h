// One protocol's listener in front of the InferenceService (HTTP/1.1, gRPC).
// run_server binds each, runs each on its own thread, and stops them all
// after the drain.
#pragma once

#include <string>

namespace tabby::server {

class FrontEnd {
 public:
  virtual ~FrontEnd() = default;
  // Binds the listening socket (tabby::Error when it cannot); the port bound
  // (the one asked for, or the free one chosen for port 0).
  virtual int bind() = 0;
  // Serves until stop(); called once, after bind(), on a thread of its own.
  virtual void serve() = 0;
  // Stops accepting and ends serve() (connections still open are closed).
  // Safe from any thread, before or during serve().
  virtual void stop() = 0;
  // For the log: "http", "grpc".
  virtual std::string scheme() const = 0;
};

}  // namespace tabby::server
