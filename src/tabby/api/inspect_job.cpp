// tabby inspect: counts, baseline, sizes, formats and broken files of a
// dataset, plus sample grids and augmentation previews (see inspect_job.h).
#include "tabby/api/inspect_job.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <thread>

#include "tabby/dataset/csv.h"
#include "tabby/dataset/shuffle.h"
#include "tabby/dataset/split_spec.h"
#include "tabby/image/decode.h"
#include "tabby/image/resize.h"
#include "tabby/nn/keras_layers.h"
#include "tabby/report/chart.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "tabby/util/log.h"
#include "tabby/util/progress.h"
#include "tabby/util/rng.h"

namespace tabby {

namespace {

constexpr uint64_t kGridSeedPurpose = 0x47524944;     // "GRID"
constexpr uint64_t kPreviewSeedPurpose = 0x50524556;  // "PREV"

struct Part {
  std::string name;
  Dataset dataset;
};

bool has_split_settings(const DataArgs& a) {
  return !a.split.empty() || !a.val.empty() || !a.val_split.empty() || a.validation_split > 0 || !a.test.empty() ||
         !a.test_split.empty() || a.test_fraction > 0;
}

// The datasets to show: the parts `tabby train` would make from the same
// settings, or the split folders of a split root, or the one dataset.
std::vector<Part> resolve_parts(const DataArgs& a) {
  std::vector<Part> parts;
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

struct Probe {
  bool ok = false;
  ImageFormat format = ImageFormat::Unknown;
  int width = 0, height = 0;
  std::string reason;
};

bool extension_matches(const fs::path& path, ImageFormat f) {
  const std::string e = lower_extension(path);
  switch (f) {
    case ImageFormat::Jpeg: return e == ".jpg" || e == ".jpeg" || e == ".jpe" || e == ".jfif";
    case ImageFormat::Png: return e == ".png";
    case ImageFormat::Bmp: return e == ".bmp" || e == ".dib";
    case ImageFormat::Gif: return e == ".gif";
    default: return true;
  }
}

// Probes (or fully decodes) every file on a pool of threads.
std::vector<Probe> probe_all(const std::vector<fs::path>& files, bool verify, int threads) {
  const size_t n = files.size();
  std::vector<Probe> out(n);
  std::atomic<size_t> next{0}, done{0};
  auto worker = [&] {
    for (;;) {
      const size_t i = next.fetch_add(1);
      if (i >= n) break;
      Probe& p = out[i];
      try {
        ImageInfo info = probe_image_file(files[i]);
        p.format = info.format;
        p.width = info.width;
        p.height = info.height;
        if (verify) decode_image_file(files[i]);
        p.ok = true;
      } catch (const DecodeError& e) {
        p.reason = e.reason();
      } catch (const std::exception& e) {
        p.reason = e.what();
      }
      done.fetch_add(1);
    }
  };
  const int t = std::max(1, std::min<int>(threads > 0 ? threads : default_thread_count(), static_cast<int>(n)));
  std::vector<std::thread> pool;
  for (int k = 0; k < t && n > 0; ++k) pool.emplace_back(worker);
  const auto start = std::chrono::steady_clock::now();
  std::unique_ptr<ProgressLine> progress;
  while (done.load() < n) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!progress && elapsed > 1.0) progress = std::make_unique<ProgressLine>(verify ? "decoding" : "probing", n, "file");
    if (progress) progress->update(static_cast<int64_t>(done.load()));
  }
  for (auto& th : pool) th.join();
  if (progress) progress->finish();
  return out;
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

void write_grid(const InspectJob& job, const Part& part, const std::vector<char>& readable, InspectReport& report) {
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

std::vector<LayerSpec> augmentation_layers(const InspectJob& job, int64_t& height, int64_t& width) {
  if (!job.augment.empty() && !job.model.empty()) {
    throw UsageError("give --augment or --model for the preview, not both");
  }
  if (job.augment.empty() && job.model.empty()) {
    throw UsageError("--augment-preview needs the augmentation to show",
                     "add --augment \"flip,rotation=0.1,zoom=0.2\" or --model tutorial-cnn-augmented");
  }
  int64_t size = 180;
  std::vector<LayerSpec> layers;
  if (!job.augment.empty()) {
    layers = parse_augment_spec(job.augment);
  } else {
    ModelSpec spec = resolve_model(job.model);
    for (const auto& l : spec.layers) {
      if (is_augmentation_layer(l.type)) layers.push_back(l);
    }
    if (layers.empty()) {
      throw UsageError("model '" + job.model + "' has no augmentation layers",
                       "use --augment \"flip,rotation=0.1\" to preview others");
    }
    if (spec.train.contains("image_size") && spec.train["image_size"].is_number_integer()) {
      size = spec.train["image_size"].get<int64_t>();
    }
  }
  height = job.image_height > 0 ? job.image_height : size;
  width = job.image_width > 0 ? job.image_width : height;
  return layers;
}

Image tensor_to_image(const torch::Tensor& chw) {
  // chw is (3,H,W) float in [0,255].
  auto hwc = chw.clamp(0, 255).round().to(torch::kUInt8).permute({1, 2, 0}).contiguous();
  Image img(static_cast<int>(hwc.size(1)), static_cast<int>(hwc.size(0)));
  std::memcpy(img.pixels.data(), hwc.data_ptr<uint8_t>(), img.pixels.size());
  return img;
}

void write_preview(const InspectJob& job, const Part& part, const std::vector<char>& readable, InspectReport& report) {
  int64_t h = 0, w = 0;
  const std::vector<LayerSpec> specs = augmentation_layers(job, h, w);
  std::vector<nn::Layer> layers;
  for (const auto& s : specs) {
    layers.push_back(nn::make_layer(s, {3, h, w}, 2));
    layers.back()->train();
  }
  const Dataset& d = part.dataset;
  std::vector<size_t> all(d.samples.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  const int versions = std::max(1, job.preview_versions);
  std::vector<report::LabelledRow> rows;
  auto picked = pick_images(d, all, static_cast<size_t>(std::max(1, job.preview_images)),
                            derive_seed(job.seed, {kPreviewSeedPurpose}), readable, static_cast<int>(std::max(h, w)));
  if (picked.empty()) throw Error("no readable image in " + d.source + " to preview augmentation on");
  for (size_t r = 0; r < picked.size(); ++r) {
    const Sample& sample = d.samples[picked[r].first];
    Image resized = resize_bilinear(picked[r].second, static_cast<int>(w), static_cast<int>(h));
    // x is (V,3,H,W): copies of the image in [0,255], one per augmented version.
    auto one = torch::from_blob(resized.pixels.data(), {h, w, 3}, torch::kUInt8).permute({2, 0, 1}).to(torch::kFloat);
    torch::Tensor x = one.unsqueeze(0).repeat({versions, 1, 1, 1});
    torch::manual_seed(derive_seed(job.seed, {kPreviewSeedPurpose, r}));
    {
      torch::NoGradGuard no_grad;
      for (auto& layer : layers) x = layer->forward(x);
    }
    report::LabelledRow row;
    row.label = d.class_names[static_cast<size_t>(sample.label)];
    row.images.push_back(resized);
    row.captions.push_back(file_caption(sample.path));
    for (int v = 0; v < versions; ++v) {
      row.images.push_back(tensor_to_image(x[v]));
      row.captions.push_back(fmt::format("augmented {}", v + 1));
    }
    rows.push_back(std::move(row));
  }
  std::string names;
  for (const auto& s : specs) names += (names.empty() ? "" : ", ") + s.type;
  report::GridStyle style;
  style.cell_size = 130;
  style.title = fmt::format("Augmentation preview at {}x{}: {}", w, h, names);
  report::render_labelled_rows(rows, job.preview, style);
  report.written.push_back(job.preview);
}

void write_charts(const InspectJob& job, InspectReport& report) {
  ensure_directory(job.charts_dir);
  report::BarChart counts;
  counts.title = "Images per class";
  counts.labels = report.class_names;
  for (int64_t v : report.images) counts.values.push_back(static_cast<double>(v));
  counts.x_label = "images";
  const fs::path a = job.charts_dir / "class_counts.png";
  report::render_bar_chart(counts, a);
  report.written.push_back(a);

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
  const fs::path b = job.charts_dir / "image_sizes.png";
  report::render_bar_chart(sizes, b);
  report.written.push_back(b);
}

nlohmann::json counts_json(const std::vector<std::string>& names, const std::vector<int64_t>& counts) {
  nlohmann::json j = nlohmann::json::object();
  for (size_t k = 0; k < names.size() && k < counts.size(); ++k) j[names[k]] = counts[k];
  return j;
}

nlohmann::json baseline_json(const metrics::MajorityBaseline& b, const std::vector<std::string>& names) {
  return {{"accuracy", b.accuracy}, {"class", b.class_index >= 0 ? names[static_cast<size_t>(b.class_index)] : ""}};
}

int64_t sum(const std::vector<int64_t>& v) {
  int64_t s = 0;
  for (int64_t x : v) s += x;
  return s;
}

}  // namespace

int64_t InspectSplit::total_files() const { return sum(files); }
int64_t InspectSplit::total_images() const { return sum(images); }

std::vector<LayerSpec> parse_augment_spec(const std::string& text) {
  std::vector<LayerSpec> layers;
  const std::string hint = "e.g. --augment \"flip,rotation=0.1,zoom=0.2\" (flip, rotation, zoom, translation, contrast)";
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    std::string item = text.substr(start, comma - start);
    start = comma + 1;
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (item.empty()) {
      if (comma == text.size() && !layers.empty()) break;
      throw UsageError("--augment \"" + text + "\": an empty item", hint);
    }
    const auto eq = item.find('=');
    const std::string key = item.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : item.substr(eq + 1);
    LayerSpec l;
    if (key == "flip") {
      l.type = "RandomFlip";
      l.params["mode"] = value.empty() ? "horizontal" : value;
      if (value != "" && value != "horizontal" && value != "vertical" && value != "both") {
        throw UsageError("--augment: flip=" + value + ": use horizontal, vertical or both", hint);
      }
    } else {
      static const std::vector<std::string> kFactorKeys = {"rotation", "zoom", "translation", "contrast"};
      if (std::find(kFactorKeys.begin(), kFactorKeys.end(), key) == kFactorKeys.end()) {
        throw UsageError("--augment: unknown augmentation '" + key + "'", hint);
      }
      double f = 0;
      try {
        size_t used = 0;
        f = std::stod(value, &used);
        if (used != value.size() || !(f > 0) || f > 1) throw std::invalid_argument(value);
      } catch (const std::exception&) {
        throw UsageError("--augment: '" + item + "' needs a factor between 0 and 1 (" + key + "=0.1)", hint);
      }
      if (key == "rotation") {
        l.type = "RandomRotation";
        l.params["factor"] = f;
      } else if (key == "zoom") {
        l.type = "RandomZoom";
        l.params["height_factor"] = f;
      } else if (key == "translation") {
        l.type = "RandomTranslation";
        l.params["height_factor"] = f;
        l.params["width_factor"] = f;
      } else if (key == "contrast") {
        l.type = "RandomContrast";
        l.params["factor"] = f;
      } else {
        throw UsageError("--augment: unknown augmentation '" + key + "'", hint);
      }
    }
    l.name = l.type;
    layers.push_back(std::move(l));
    if (comma == text.size()) break;
  }
  if (layers.empty()) throw UsageError("--augment is empty", hint);
  return layers;
}

InspectReport run_inspect_job(const InspectJob& job) {
  const auto start = std::chrono::steady_clock::now();
  if (!job.grid.empty() && (job.samples < 1 || job.samples > 100)) {
    throw UsageError(fmt::format("--per-class {}: give 1 to 100 images per class for the grid", job.samples));
  }
  for (const auto* p : {&job.grid, &job.preview}) {
    if (!p->empty()) report::chart_format_for(*p);  // .png or .svg, before the slow part
  }
  if (!job.preview.empty()) {
    int64_t h = 0, w = 0;
    augmentation_layers(job, h, w);  // bad specs fail now, not after probing
  }

  InspectReport report;
  report.data = job.data.data;
  report.verified = job.verify;
  std::vector<Part> parts = resolve_parts(job.data);
  report.class_names = parts.front().dataset.class_names;

  // Each file once, even when splits overlap.
  std::vector<fs::path> files;
  std::map<fs::path, size_t> index_of;
  std::vector<std::vector<size_t>> file_of(parts.size());
  for (size_t p = 0; p < parts.size(); ++p) {
    for (const auto& s : parts[p].dataset.samples) {
      auto [it, fresh] = index_of.emplace(s.path, files.size());
      if (fresh) files.push_back(s.path);
      file_of[p].push_back(it->second);
    }
  }
  log::infof("{} {} files in {} {}", job.verify ? "decoding" : "probing", files.size(), parts.size(),
             parts.size() == 1 ? "split" : "splits");
  const std::vector<Probe> probes = probe_all(files, job.verify, job.threads);

  const size_t num_classes = report.class_names.size();
  report.images.assign(num_classes, 0);
  for (size_t p = 0; p < parts.size(); ++p) {
    InspectSplit s;
    s.name = parts[p].name;
    s.source = parts[p].dataset.source;
    s.files.assign(num_classes, 0);
    s.images.assign(num_classes, 0);
    const auto& samples = parts[p].dataset.samples;
    for (size_t i = 0; i < samples.size(); ++i) {
      const auto c = static_cast<size_t>(samples[i].label);
      s.files[c]++;
      if (probes[file_of[p][i]].ok) {
        s.images[c]++;
        report.images[c]++;
      }
    }
    s.baseline = metrics::majority_baseline(s.images);
    report.splits.push_back(std::move(s));
  }
  report.baseline = metrics::majority_baseline(report.images);

  std::map<std::pair<int, int>, int64_t> sizes;
  bool first = true;
  for (size_t f = 0; f < files.size(); ++f) {
    const Probe& p = probes[f];
    if (!p.ok) {
      report.unreadable.push_back({files[f], p.reason});
      continue;
    }
    report.formats[format_name(p.format)]++;
    if (!extension_matches(files[f], p.format)) report.extension_mismatches++;
    sizes[{p.width, p.height}]++;
    if (first) {
      report.min_width = report.max_width = p.width;
      report.min_height = report.max_height = p.height;
      first = false;
    }
    report.min_width = std::min(report.min_width, p.width);
    report.max_width = std::max(report.max_width, p.width);
    report.min_height = std::min(report.min_height, p.height);
    report.max_height = std::max(report.max_height, p.height);
  }
  std::sort(report.unreadable.begin(), report.unreadable.end(),
            [](const SkippedFile& a, const SkippedFile& b) { return a.path < b.path; });
  std::vector<SizeCount> all_sizes;
  for (const auto& [wh, n] : sizes) all_sizes.push_back({wh.first, wh.second, n});
  // Most common first; ties by larger area, then width (a stable, readable order).
  std::sort(all_sizes.begin(), all_sizes.end(), [](const SizeCount& a, const SizeCount& b) {
    if (a.count != b.count) return a.count > b.count;
    if (a.width * a.height != b.width * b.height) return a.width * a.height > b.width * b.height;
    return a.width > b.width;
  });
  report.distinct_sizes = static_cast<int64_t>(all_sizes.size());
  for (size_t k = 0; k < all_sizes.size(); ++k) {
    if (static_cast<int>(k) < std::max(0, job.top_sizes)) {
      report.top_sizes.push_back(all_sizes[k]);
    } else {
      report.other_sizes += all_sizes[k].count;
    }
  }

  // Grid and preview draw from the first split (the training data).
  std::vector<char> readable(parts.front().dataset.samples.size());
  for (size_t i = 0; i < readable.size(); ++i) readable[i] = probes[file_of[0][i]].ok;
  if (!job.grid.empty()) write_grid(job, parts.front(), readable, report);
  if (!job.preview.empty()) write_preview(job, parts.front(), readable, report);
  if (!job.charts_dir.empty()) write_charts(job, report);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

nlohmann::json InspectReport::to_json() const {
  nlohmann::json splits_json = nlohmann::json::array();
  for (const auto& s : splits) {
    splits_json.push_back({{"name", s.name},
                           {"source", s.source},
                           {"files", s.total_files()},
                           {"images", s.total_images()},
                           {"class_counts", counts_json(class_names, s.images)},
                           {"counts", s.images},
                           {"baseline", baseline_json(s.baseline, class_names)}});
  }
  nlohmann::json top = nlohmann::json::array();
  for (const auto& s : top_sizes) top.push_back({{"width", s.width}, {"height", s.height}, {"count", s.count}});
  nlohmann::json bad = nlohmann::json::array();
  for (const auto& u : unreadable) bad.push_back({{"file", u.path.string()}, {"reason", u.reason}});
  nlohmann::json out_files = nlohmann::json::array();
  for (const auto& w : written) out_files.push_back(w.string());
  int64_t file_count = 0;
  for (const auto& s : splits) file_count += s.total_files();
  return {{"data", data},
          {"classes", class_names},
          {"class_counts", counts_json(class_names, images)},
          {"counts", images},
          {"images", sum(images)},
          {"files", file_count},
          {"baseline", baseline_json(baseline, class_names)},
          {"splits", splits_json},
          {"image_sizes",
           {{"top", top},
            {"other", other_sizes},
            {"distinct", distinct_sizes},
            {"width", {{"min", min_width}, {"max", max_width}}},
            {"height", {{"min", min_height}, {"max", max_height}}}}},
          {"formats", formats},
          {"extension_mismatches", extension_mismatches},
          {"unreadable", bad},
          {"unreadable_count", unreadable.size()},
          {"verified", verified},
          {"seconds", seconds},
          {"written", out_files}};
}

std::string InspectReport::to_text(size_t max_unreadable) const {
  std::string out;
  const int64_t total = sum(images);
  out += fmt::format("{}: {} images in {} classes{}\n", data, total, class_names.size(),
                     verified ? " (every file decoded)" : " (headers probed; --verify decodes every file)");
  // Images per class: one column per split, then the total when there are several.
  size_t name_w = 5;
  for (const auto& c : class_names) name_w = std::max(name_w, c.size());
  name_w = std::min<size_t>(name_w, 30);
  std::vector<std::string> headers;
  for (const auto& s : splits) headers.push_back(s.name);
  if (splits.size() > 1) headers.push_back("total");
  std::vector<size_t> widths;
  for (const auto& h : headers) widths.push_back(std::max<size_t>(h.size(), 7));
  out += "\nimages per class\n  " + fmt::format("{:<{}}", "class", name_w);
  for (size_t k = 0; k < headers.size(); ++k) out += fmt::format("  {:>{}}", headers[k], widths[k]);
  out += "\n";
  auto row = [&](const std::string& name, auto value_of) {
    std::string line = "  " + fmt::format("{:<{}}", name.substr(0, name_w), name_w);
    for (size_t k = 0; k < headers.size(); ++k) line += fmt::format("  {:>{}}", value_of(k), widths[k]);
    out += line + "\n";
  };
  for (size_t c = 0; c < class_names.size(); ++c) {
    row(class_names[c], [&](size_t k) { return k < splits.size() ? splits[k].images[c] : images[c]; });
  }
  row("total", [&](size_t k) { return k < splits.size() ? splits[k].total_images() : total; });
  out += "\nmajority-class baseline accuracy\n";
  for (const auto& s : splits) {
    if (s.baseline.class_index < 0) continue;
    out += fmt::format("  {:<12} {:.4f} (always '{}')\n", s.name, s.baseline.accuracy,
                       class_names[static_cast<size_t>(s.baseline.class_index)]);
  }
  if (splits.size() > 1 && baseline.class_index >= 0) {
    out += fmt::format("  {:<12} {:.4f} (always '{}')\n", "all", baseline.accuracy,
                       class_names[static_cast<size_t>(baseline.class_index)]);
  }
  int64_t readable = 0;
  for (const auto& s : top_sizes) readable += s.count;
  readable += other_sizes;
  out += fmt::format("\nimage sizes (width x height): {} distinct", distinct_sizes);
  if (readable > 0) {
    out += fmt::format("; width {}-{}, height {}-{}", min_width, max_width, min_height, max_height);
  }
  out += "\n";
  for (const auto& s : top_sizes) {
    out += fmt::format("  {:>11}  {:>8}  {:5.1f}%\n", fmt::format("{}x{}", s.width, s.height), s.count,
                       100.0 * s.count / std::max<int64_t>(readable, 1));
  }
  if (other_sizes > 0) {
    out += fmt::format("  {:>11}  {:>8}  {:5.1f}%\n", "other", other_sizes,
                       100.0 * other_sizes / std::max<int64_t>(readable, 1));
  }
  out += "\nformats:";
  for (const auto& [name, n] : formats) out += fmt::format(" {} {}", name, n);
  if (formats.empty()) out += " none readable";
  if (extension_mismatches > 0) {
    out += fmt::format(" ({} files have an extension that does not match their content)", extension_mismatches);
  }
  out += "\n";
  if (unreadable.empty()) {
    out += "unreadable files: none\n";
  } else {
    out += fmt::format("unreadable files: {}\n", unreadable.size());
    for (size_t i = 0; i < unreadable.size() && i < max_unreadable; ++i) {
      out += fmt::format("  {}: {}\n", unreadable[i].path.string(), unreadable[i].reason);
    }
    if (unreadable.size() > max_unreadable) {
      out += fmt::format("  ... and {} more (--json lists them all)\n", unreadable.size() - max_unreadable);
    }
  }
  for (const auto& w : written) out += "wrote " + w.string() + "\n";
  return out;
}

}  // namespace tabby
