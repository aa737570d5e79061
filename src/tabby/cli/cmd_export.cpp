// tabby export RUN --format onnx: flags -> ExportJob -> run_export_job (tabby/export).
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <memory>

#include "tabby/cli/commands.h"
#include "tabby/util/error.h"
#ifdef TABBY_HAVE_ONNX
#include "tabby/export/onnx_export.h"
#endif

namespace tabby::cli {

Command add_export(CLI::App& root) {
  struct Flags {
    std::string run, format = "onnx", out;
    int opset = 10;
    bool json = false;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* app = root.add_subcommand(
      "export", "Write a trained run as an ONNX model (for ONNX Runtime, OpenCV DNN, TensorRT, ...)");
  app->add_option("run", f->run, "The run folder (tabby train --out) to export")->required();
  app->add_option("--format", f->format, "onnx (the only format)");
  app->add_option("--opset", f->opset,
                  "ONNX opset, 10 to 17 (default 10: read by OpenCV 4.6; HardSwish is its own op from 14)");
  app->add_option("--out", f->out, "The file to write (default RUN/model.onnx)");
  app->add_flag("--json", f->json, "Print {file, opset, bytes, nodes, parameters} as JSON");
  Action run = [f]() -> int {
#ifdef TABBY_HAVE_ONNX
    ExportJob job;
    job.run = f->run;
    job.format = f->format;
    job.opset = f->opset;
    job.out = f->out;
    const ExportOutcome out = run_export_job(job);
    if (f->json) {
      print_json(nlohmann::json({{"file", out.file.string()}, {"opset", out.opset}, {"bytes", out.bytes},
                                 {"nodes", out.nodes}, {"parameters", out.parameters}})
                     .dump(2));
    } else {
      std::fputs(fmt::format("{}\n", out.file.string()).c_str(), stdout);
    }
    return 0;
#else
    throw Error("this tabby was built without ONNX (libonnx-dev), so it cannot export",
                "install libonnx-dev and rebuild");
#endif
  };
  return {app, run};
}

}  // namespace tabby::cli
