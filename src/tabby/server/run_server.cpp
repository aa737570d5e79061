#include "tabby/server/run_server.h"

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "tabby/server/http_front_end.h"
#ifdef TABBY_HAVE_GRPC
#include "tabby/server/grpc_front_end.h"
#endif
#include "tabby/server/inference_service.h"
#include "tabby/server/signals.h"
#include "tabby/util/error.h"
#include "tabby/util/log.h"

namespace tabby::server {

int run_server(const ServeOptions& options) {
  InferenceService service(options);
  std::vector<std::unique_ptr<FrontEnd>> front_ends;
  front_ends.push_back(make_http_front_end(service));
  if (options.grpc_port >= 0) {
#ifdef TABBY_HAVE_GRPC
    front_ends.push_back(make_grpc_front_end(service));
#else
    throw Error("this tabby was built without grpc++, so it cannot serve gRPC (--grpc-port)",
                "install libgrpc++-dev and protobuf-compiler-grpc (scripts/install-deps.sh) and rebuild");
#endif
  }
  std::vector<int> ports;
  for (auto& f : front_ends) ports.push_back(f->bind());

  std::atomic<int> exit_code{0};
  std::atomic<bool> stopped{false};
  auto stop_all = [&] {
    if (stopped.exchange(true)) return;
    for (auto& f : front_ends) f->stop();
  };
  StopSignals signals([&](int sig) {
    service.drain(sig);
    stop_all();
  });
  std::vector<std::thread> serving;
  for (auto& f : front_ends) serving.emplace_back([&f] { f->serve(); });

  std::string names;
  for (const auto& n : service.model_names()) names += (names.empty() ? "" : ", ") + n;
  std::string where;
  for (size_t k = 0; k < front_ends.size(); ++k) {
    where += fmt::format("{}{}://{}:{}", k ? " and " : "", front_ends[k]->scheme(), options.host, ports[k]);
  }
  log::infof("tabby serve: listening on {} (models: {}); loading", where, names);
  if (!service.load_models()) {
    exit_code = 1;
    stop_all();
  }
  for (auto& t : serving) t.join();
  log::info(exit_code == 0 ? "stopped" : "stopped after an error");
  return exit_code;
}

}  // namespace tabby::server
