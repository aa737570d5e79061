// The files of a run folder: everything needed to evaluate, predict with,
// report on or resume a training run, by its path alone.
//
//   RUN/model.toml             the resolved model (usable again with --model)
//   RUN/run.json               the run record (run_record.h): settings, status, results
//   RUN/classes.txt            class names, one per line (label order)
//   RUN/weights.safetensors    the kept weights (torchvision names for backbones)
//   RUN/history.csv            one row per epoch
//   RUN/checkpoint.safetensors the latest epoch's full state, for --resume
//   RUN/best.safetensors       weights of the best epoch so far
// Every file is written atomically (temporary file + rename).
#pragma once

namespace tabby::run_files {

inline const char* kModel = "model.toml";
inline const char* kRunJson = "run.json";
inline const char* kClasses = "classes.txt";
inline const char* kWeights = "weights.safetensors";
inline const char* kHistory = "history.csv";
inline const char* kCheckpoint = "checkpoint.safetensors";
inline const char* kBest = "best.safetensors";

}  // namespace tabby::run_files
