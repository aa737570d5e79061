// tabby inspect: the dataset's statistics (dataset/inspect_report.h), plus
// sample grids, augmentation previews and charts (see inspect_job.h).
#include "tabby/api/inspect_job.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "tabby/dataset/shuffle.h"
#include "tabby/dataset/split_spec.h"
#include "tabby/image/decode.h"
#include "tabby/image/resize.h"
#include "tabby/nn/keras_layers.h"
#include "tabby/report/chart.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "tabby/util/log.h"
#include "tabby/util/rng.h"

namespace tabby {

namespace {

constexpr uint64_t kGridSeedPurpose = 0x47524944;     // "GRID"
constexpr uint64_t kPreviewSeedPurpose = 0x50524556;  // "PREV"

bool has_split_settings(const DataArgs& a) {
  return !a.split.empty() || !a.val.empty() || !a.val_split.empty() || a.validation_split > 0 || !a.test.empty() ||
         !a.test_split.empty() || a.test_fraction > 0;
}

// The datasets to show: the parts `tabby train` would make from the same
// settings, or the split folders of a split root, or the one dataset.
std::vector<DatasetPart> resolve_parts(const DataArgs& a) {
  std::vector<DatasetPart> parts;
  if (has_split_settings(a)) {
    ResolvedData r = resolve_data(a);
    parts.push_back({"train", std::move(r.train)});
    if (r.validation) parts.push_back({"validation", std::move(*r.validation)});
    if (r.test) parts.push_back({"test", std::move(*r.test)});
    return parts;
  }
  std::error_code ec;
  if (a.data.empty() || lower_extension(a.data) == ".csv" || !fs::is_directory(a.data, ec)) {
    // load_dataset reads CSV files and words the errors for missing paths.
    parts.push_back({"train", load_dataset(a.data, "", std::nullopt)});
    return parts;
  }
  auto splits = list_splits(a.data);
  if (splits.size() == 1 && fs::equivalent(splits[0].folder, a.data, ec)) {
    parts.push_back({"train", load_dataset(a.data, "", std::nullopt)});
    return parts;
  }
  for (const auto& s : splits) parts.push_back({s.name, resolve_split(a.data, s.name)});
  return parts;
}

// Up to `k` files of `candidates` (indices into `dataset`) that decode, in a
// seeded random order; each decoded no smaller than `min_side` where possible.
std::vector<std::pair<size_t, Image>> pick_images(const Dataset& dataset, std::vector<size_t> candidates, size_t k,
                                                  uint64_t seed, const std::vector<char>& readable, int min_side) {
  std::vector<std::pair<size_t, Image>> picked;
  auto order = seeded_permutation(candidates.size(), seed);
  for (size_t o : order) {
    if (picked.size() >= k) break;
    const size_t i = candidates[o];
    if (!readable[i]) continue;
    try {
      DecodeOptions d;
      d.target_width = d.target_height = min_side;
      picked.push_back({i, decode_image_file(dataset.samples[i].path, d)});
    } catch (const Error&) {
      // Broken despite a good header: listed only with --verify; skip it here.
    }
  }
  return picked;
}

std::string file_caption(const fs::path& p) {
  std::string name = p.filename().string();
  return name.size() > 18 ? name.substr(0, 8) + "…" + name.substr(name.size() - 8) : name;
}

void write_grid(const InspectJob& job, const DatasetPart& part, const std::vector<char>& readable,
                InspectReport& report) {
  const Dataset& d = part.dataset;
  std::vector<std::vector<size_t>> by_class(d.class_names.size());
  for (size_t i = 0; i < d.samples.size(); ++i) by_class[static_cast<size_t>(d.samples[i].label)].push_back(i);
  std::vector<report::LabelledRow> rows;
  const int cell = 120;
  for (size_t c = 0; c < by_class.size(); ++c) {
    report::LabelledRow row;
    row.label = d.class_names[c];
    for (auto& [i, image] : pick_images(d, by_class[c], static_cast<size_t>(job.samples),
                                        derive_seed(job.seed, {kGridSeedPurpose, c}), readable, cell)) {
      row.images.push_back(std::move(image));
      row.captions.push_back(file_caption(d.samples[i].path));
    }
    if (row.images.empty()) row.captions.clear();
    rows.push_back(std::move(row));
  }
  report::GridStyle style;
  style.cell_size = cell;
  style.title = fmt::format("{} random {} per class ({})", job.samples, job.samples == 1 ? "image" : "images",
                            part.name);
  report::render_labelled_rows(rows, job.grid, style);
  report.written.push_back(job.grid);
}

// The layers the preview shows and the size it shows them at.
struct PreviewPlan {
  std::vector<LayerSpec> layers;
  int64_t height = 0, width = 0;
};

std::vector<LayerSpec> model_augmentation(const ModelSpec& spec, const std::string& name) {
  std::vector<LayerSpec> layers;
  for (const auto& l : spec.layers) {
    if (!is_augmentation_layer(l.type)) continue;
    layers.push_back(l);
    // The preview feeds the layers [0, 255] pixels directly, without the
    // model's rescaling in front of them.
    if (takes_value_range(l.type)) layers.back().params["value_range"] = {0.0, 255.0};
  }
  if (layers.empty()) {
    throw UsageError("model '" + name + "' has no augmentation layers",
                     "use --augment \"flip,rotation=0.1\" to preview others");
  }
  return layers;
}

PreviewPlan preview_plan(const InspectJob& job) {
  if (!job.augment.empty() && !job.model.empty()) throw UsageError("give --augment or --model for the preview, not both");
  if (job.augment.empty() && job.model.empty()) {
    throw UsageError("--augment-preview needs the augmentation to show",
                     "add --augment \"flip,rotation=0.1,zoom=0.2\" or --model tutorial-cnn-augmented");
  }
  int64_t size = 180;
  PreviewPlan plan;
  if (!job.augment.empty()) {
    plan.layers = parse_augment_spec(job.augment);
  } else {
    const ModelSpec spec = resolve_model(job.model);
    plan.layers = model_augmentation(spec, job.model);
    if (spec.train.contains("image_size") && spec.train["image_size"].is_number_integer()) {
      size = spec.train["image_size"].get<int64_t>();
    }
  }
  plan.height = job.image_height > 0 ? job.image_height : size;
  plan.width = job.image_width > 0 ? job.image_width : plan.height;
  return plan;
}

Image tensor_to_image(const torch::Tensor& chw) {
  // chw is (3,H,W) float in [0,255].
  auto hwc = chw.clamp(0, 255).round().to(torch::kUInt8).permute({1, 2, 0}).contiguous();
  Image img(static_cast<int>(hwc.size(1)), static_cast<int>(hwc.size(0)));
  std::memcpy(img.pixels.data(), hwc.data_ptr<uint8_t>(), img.pixels.size());
  return img;
}

// One image as the model would see it, then `versions` augmented copies.
report::LabelledRow preview_row(const Sample& sample, const std::string& label, const Image& decoded,
                                const PreviewPlan& plan, std::vector<nn::Layer>& layers, int versions, uint64_t seed) {
  const Image resized = resize_bilinear(decoded, static_cast<int>(plan.width), static_cast<int>(plan.height));
  // x is (V,3,H,W): copies of the image in [0,255], one per augmented version.
  auto one = torch::from_blob(const_cast<uint8_t*>(resized.pixels.data()), {plan.height, plan.width, 3}, torch::kUInt8)
                 .permute({2, 0, 1})
                 .to(torch::kFloat);
  torch::Tensor x = one.unsqueeze(0).repeat({versions, 1, 1, 1});
  torch::manual_seed(seed);
  {
    torch::NoGradGuard no_grad;
    for (auto& layer : layers) x = layer->forward(x);
  }
  report::LabelledRow row;
  row.label = label;
  row.images.push_back(resized);
  row.captions.push_back(file_caption(sample.path));
  for (int v = 0; v < versions; ++v) {
    row.images.push_back(tensor_to_image(x[v]));
    row.captions.push_back(fmt::format("augmented {}", v + 1));
  }
  return row;
}

void write_preview(const InspectJob& job, const DatasetPart& part, const std::vector<char>& readable,
                   InspectReport& report) {
  const PreviewPlan plan = preview_plan(job);
  std::vector<nn::Layer> layers;
  for (const auto& s : plan.layers) {
    layers.push_back(nn::make_layer(s, {3, plan.height, plan.width}, 2));
    layers.back()->train();
  }
  const Dataset& d = part.dataset;
  std::vector<size_t> all(d.samples.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  auto picked = pick_images(d, all, static_cast<size_t>(std::max(1, job.preview_images)),
                            derive_seed(job.seed, {kPreviewSeedPurpose}), readable,
                            static_cast<int>(std::max(plan.height, plan.width)));
  if (picked.empty()) throw Error("no readable image in " + d.source + " to preview augmentation on");
  std::vector<report::LabelledRow> rows;
  for (size_t r = 0; r < picked.size(); ++r) {
    const Sample& sample = d.samples[picked[r].first];
    rows.push_back(preview_row(sample, d.class_names[static_cast<size_t>(sample.label)], picked[r].second, plan,
                               layers, std::max(1, job.preview_versions), derive_seed(job.seed, {kPreviewSeedPurpose, r})));
  }
  std::string names;
  for (const auto& s : plan.layers) names += (names.empty() ? "" : ", ") + s.type;
  report::GridStyle style;
  style.cell_size = 130;
  style.title = fmt::format("Augmentation preview at {}x{}: {}", plan.width, plan.height, names);
  report::render_labelled_rows(rows, job.preview, style);
  report.written.push_back(job.preview);
}

void write_bar_chart(const report::BarChart& chart, const fs::path& file, InspectReport& report) {
  report::render_bar_chart(chart, file);
  report.written.push_back(file);
}

void write_charts(const InspectJob& job, InspectReport& report) {
  ensure_directory(job.charts_dir);
  report::BarChart counts;
  counts.title = "Images per class";
  counts.labels = report.class_names;
  for (int64_t v : report.images) counts.values.push_back(static_cast<double>(v));
  counts.x_label = "images";
  write_bar_chart(counts, job.charts_dir / "class_counts.png", report);

  report::BarChart sizes;
  sizes.title = "Most common image sizes";
  for (const auto& s : report.top_sizes) {
    sizes.labels.push_back(fmt::format("{}x{}", s.width, s.height));
    sizes.values.push_back(static_cast<double>(s.count));
  }
  if (report.other_sizes > 0) {
    sizes.labels.push_back("other");
    sizes.values.push_back(static_cast<double>(report.other_sizes));
  }
  sizes.x_label = "images";
  sizes.y_label = "width x height";
  write_bar_chart(sizes, job.charts_dir / "image_sizes.png", report);
}

// Bad flags fail now, not after probing thousands of files.
void check_job(const InspectJob& job) {
  if (!job.grid.empty() && (job.samples < 1 || job.samples > 100)) {
    throw UsageError(fmt::format("--per-class {}: give 1 to 100 images per class for the grid", job.samples));
  }
  for (const auto* p : {&job.grid, &job.preview}) {
    if (!p->empty()) report::chart_format_for(*p);  // .png or .svg
  }
  if (!job.preview.empty()) preview_plan(job);
}

}  // namespace

InspectReport run_inspect_job(const InspectJob& job) {
  const auto start = std::chrono::steady_clock::now();
  check_job(job);
  const std::vector<DatasetPart> parts = resolve_parts(job.data);
  std::vector<char> readable;  // of the first split's samples: the grid and preview draw from the training data
  InspectReport report = inspect_parts(job.data.data, parts, {job.verify, job.threads, job.top_sizes}, &readable);
  if (!job.grid.empty()) write_grid(job, parts.front(), readable, report);
  if (!job.preview.empty()) write_preview(job, parts.front(), readable, report);
  if (!job.charts_dir.empty()) write_charts(job, report);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace tabby
