#include "tabby/dataset/inspect_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "tabby/util/fs.h"
#include "tabby/util/log.h"
#include "tabby/util/progress.h"
#include "tabby/util/threads.h"

namespace tabby {

namespace {

using nlohmann::json;

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

FileProbe probe_one(const fs::path& file, bool verify) {
  FileProbe p;
  try {
    const ImageInfo info = probe_image_file(file);
    p.format = info.format;
    p.width = info.width;
    p.height = info.height;
    if (verify) decode_image_file(file);
    p.ok = true;
  } catch (const DecodeError& e) {
    p.reason = e.reason();
  } catch (const std::exception& e) {
    p.reason = e.what();
  }
  return p;
}

int64_t sum(const std::vector<int64_t>& v) {
  int64_t s = 0;
  for (int64_t x : v) s += x;
  return s;
}

// Each file once, even when parts overlap: the files, and each part's sample -> file index.
struct FileIndex {
  std::vector<fs::path> files;
  std::vector<std::vector<size_t>> file_of;
};

FileIndex index_files(const std::vector<DatasetPart>& parts) {
  FileIndex index;
  std::map<fs::path, size_t> position;
  index.file_of.resize(parts.size());
  for (size_t p = 0; p < parts.size(); ++p) {
    for (const auto& s : parts[p].dataset.samples) {
      auto [it, fresh] = position.emplace(s.path, index.files.size());
      if (fresh) index.files.push_back(s.path);
      index.file_of[p].push_back(it->second);
    }
  }
  return index;
}

void count_splits(InspectReport& report, const std::vector<DatasetPart>& parts, const FileIndex& index,
                  const std::vector<FileProbe>& probes) {
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
      if (probes[index.file_of[p][i]].ok) {
        s.images[c]++;
        report.images[c]++;
      }
    }
    s.baseline = metrics::majority_baseline(s.images);
    report.splits.push_back(std::move(s));
  }
  report.baseline = metrics::majority_baseline(report.images);
}

// Most common first; ties by larger area, then width (a stable, readable order).
void rank_sizes(InspectReport& report, const std::map<std::pair<int, int>, int64_t>& sizes, int top) {
  std::vector<SizeCount> all;
  for (const auto& [wh, n] : sizes) all.push_back({wh.first, wh.second, n});
  std::sort(all.begin(), all.end(), [](const SizeCount& a, const SizeCount& b) {
    if (a.count != b.count) return a.count > b.count;
    if (a.width * a.height != b.width * b.height) return a.width * a.height > b.width * b.height;
    return a.width > b.width;
  });
  report.distinct_sizes = static_cast<int64_t>(all.size());
  for (size_t k = 0; k < all.size(); ++k) {
    if (static_cast<int>(k) < std::max(0, top)) {
      report.top_sizes.push_back(all[k]);
    } else {
      report.other_sizes += all[k].count;
    }
  }
}

void count_files(InspectReport& report, const FileIndex& index, const std::vector<FileProbe>& probes, int top) {
  std::map<std::pair<int, int>, int64_t> sizes;
  bool first = true;
  for (size_t f = 0; f < index.files.size(); ++f) {
    const FileProbe& p = probes[f];
    if (!p.ok) {
      report.unreadable.push_back({index.files[f], p.reason});
      continue;
    }
    report.formats[format_name(p.format)]++;
    if (!extension_matches(index.files[f], p.format)) report.extension_mismatches++;
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
  rank_sizes(report, sizes, top);
}

json counts_json(const std::vector<std::string>& names, const std::vector<int64_t>& counts) {
  json j = json::object();
  for (size_t k = 0; k < names.size() && k < counts.size(); ++k) j[names[k]] = counts[k];
  return j;
}

json baseline_json(const metrics::MajorityBaseline& b, const std::vector<std::string>& names) {
  return {{"accuracy", b.accuracy}, {"class", b.class_index >= 0 ? names[static_cast<size_t>(b.class_index)] : ""}};
}

// Images per class: one column per split, then the total when there are several.
std::string class_table(const InspectReport& r) {
  size_t name_w = 5;
  for (const auto& c : r.class_names) name_w = std::max(name_w, c.size());
  name_w = std::min<size_t>(name_w, 30);
  std::vector<std::string> headers;
  for (const auto& s : r.splits) headers.push_back(s.name);
  if (r.splits.size() > 1) headers.push_back("total");
  std::vector<size_t> widths;
  for (const auto& h : headers) widths.push_back(std::max<size_t>(h.size(), 7));
  std::string out = "\nimages per class\n  " + fmt::format("{:<{}}", "class", name_w);
  for (size_t k = 0; k < headers.size(); ++k) out += fmt::format("  {:>{}}", headers[k], widths[k]);
  out += "\n";
  auto row = [&](const std::string& name, auto value_of) {
    std::string line = "  " + fmt::format("{:<{}}", name.substr(0, name_w), name_w);
    for (size_t k = 0; k < headers.size(); ++k) line += fmt::format("  {:>{}}", value_of(k), widths[k]);
    out += line + "\n";
  };
  const auto& splits = r.splits;
  for (size_t c = 0; c < r.class_names.size(); ++c) {
    row(r.class_names[c], [&](size_t k) { return k < splits.size() ? splits[k].images[c] : r.images[c]; });
  }
  const int64_t total = sum(r.images);
  row("total", [&](size_t k) { return k < splits.size() ? splits[k].total_images() : total; });
  return out;
}

std::string baseline_lines(const InspectReport& r) {
  std::string out = "\nmajority-class baseline accuracy\n";
  for (const auto& s : r.splits) {
    if (s.baseline.class_index < 0) continue;
    out += fmt::format("  {:<12} {:.4f} (always '{}')\n", s.name, s.baseline.accuracy,
                       r.class_names[static_cast<size_t>(s.baseline.class_index)]);
  }
  if (r.splits.size() > 1 && r.baseline.class_index >= 0) {
    out += fmt::format("  {:<12} {:.4f} (always '{}')\n", "all", r.baseline.accuracy,
                       r.class_names[static_cast<size_t>(r.baseline.class_index)]);
  }
  return out;
}

std::string size_lines(const InspectReport& r) {
  int64_t readable = r.other_sizes;
  for (const auto& s : r.top_sizes) readable += s.count;
  std::string out = fmt::format("\nimage sizes (width x height): {} distinct", r.distinct_sizes);
  if (readable > 0) out += fmt::format("; width {}-{}, height {}-{}", r.min_width, r.max_width, r.min_height, r.max_height);
  out += "\n";
  auto line = [&](const std::string& label, int64_t n) {
    out += fmt::format("  {:>11}  {:>8}  {:5.1f}%\n", label, n, 100.0 * n / std::max<int64_t>(readable, 1));
  };
  for (const auto& s : r.top_sizes) line(fmt::format("{}x{}", s.width, s.height), s.count);
  if (r.other_sizes > 0) line("other", r.other_sizes);
  return out;
}

std::string file_lines(const InspectReport& r, size_t max_unreadable) {
  std::string out = "\nformats:";
  for (const auto& [name, n] : r.formats) out += fmt::format(" {} {}", name, n);
  if (r.formats.empty()) out += " none readable";
  if (r.extension_mismatches > 0) {
    out += fmt::format(" ({} files have an extension that does not match their content)", r.extension_mismatches);
  }
  out += "\n";
  if (r.unreadable.empty()) return out + "unreadable files: none\n";
  out += fmt::format("unreadable files: {}\n", r.unreadable.size());
  for (size_t i = 0; i < r.unreadable.size() && i < max_unreadable; ++i) {
    out += fmt::format("  {}: {}\n", r.unreadable[i].path.string(), r.unreadable[i].reason);
  }
  if (r.unreadable.size() > max_unreadable) {
    out += fmt::format("  ... and {} more (--json lists them all)\n", r.unreadable.size() - max_unreadable);
  }
  return out;
}

}  // namespace

int64_t InspectSplit::total_files() const { return sum(files); }
int64_t InspectSplit::total_images() const { return sum(images); }

std::vector<FileProbe> probe_files(const std::vector<fs::path>& files, bool verify, int threads) {
  const size_t n = files.size();
  std::vector<FileProbe> out(n);
  std::atomic<size_t> next{0}, done{0};
  auto worker = [&] {
    for (size_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) {
      out[i] = probe_one(files[i], verify);
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

InspectReport inspect_parts(const std::string& data, const std::vector<DatasetPart>& parts,
                            const InspectOptions& options, std::vector<char>* readable) {
  InspectReport report;
  report.data = data;
  report.verified = options.verify;
  report.class_names = parts.front().dataset.class_names;
  const FileIndex index = index_files(parts);
  log::infof("{} {} files in {} {}", options.verify ? "decoding" : "probing", index.files.size(), parts.size(),
             parts.size() == 1 ? "split" : "splits");
  const std::vector<FileProbe> probes = probe_files(index.files, options.verify, options.threads);
  count_splits(report, parts, index, probes);
  count_files(report, index, probes, options.top_sizes);
  if (readable) {
    readable->resize(parts.front().dataset.samples.size());
    for (size_t i = 0; i < readable->size(); ++i) (*readable)[i] = probes[index.file_of[0][i]].ok;
  }
  return report;
}

json InspectReport::to_json() const {
  json splits_json = json::array();
  for (const auto& s : splits) {
    splits_json.push_back({{"name", s.name},
                           {"source", s.source},
                           {"files", s.total_files()},
                           {"images", s.total_images()},
                           {"class_counts", counts_json(class_names, s.images)},
                           {"counts", s.images},
                           {"baseline", baseline_json(s.baseline, class_names)}});
  }
  json top = json::array();
  for (const auto& s : top_sizes) top.push_back({{"width", s.width}, {"height", s.height}, {"count", s.count}});
  json bad = json::array();
  for (const auto& u : unreadable) bad.push_back({{"file", u.path.string()}, {"reason", u.reason}});
  json out_files = json::array();
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
  std::string out = fmt::format("{}: {} images in {} classes{}\n", data, sum(images), class_names.size(),
                                verified ? " (every file decoded)" : " (headers probed; --verify decodes every file)");
  out += class_table(*this);
  out += baseline_lines(*this);
  out += size_lines(*this);
  out += file_lines(*this, max_unreadable);
  for (const auto& w : written) out += "wrote " + w.string() + "\n";
  return out;
}

}  // namespace tabby
