#include "tabby/distributed/shard.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <sstream>

#include "tabby/pipeline/rows_file.h"
#include "tabby/util/error.h"
#include "tabby/util/log.h"

namespace tabby {

namespace {

// Paths and skipped files of one rank's share, as JSON bytes.
std::string share_files_json(const ImageCache& c) {
  nlohmann::json j;
  j["paths"] = nlohmann::json::array();
  for (const auto& p : c.paths) j["paths"].push_back(p.string());
  j["skipped"] = nlohmann::json::array();
  for (const auto& s : c.skipped) j["skipped"].push_back({s.path.string(), s.reason});
  return j.dump();
}

}  // namespace

RowRange shard_rows(int64_t n, int rank, int world) {
  return {n * rank / world, n * (rank + 1) / world};
}

namespace {

// The ranks as the disk cache needs them: which share this machine's hosts.
CacheTeam cache_team(Collective& group) {
  char name[256] = {0};
  if (::gethostname(name, sizeof(name) - 1) != 0) std::strcpy(name, "host");
  const std::vector<std::string> hosts = group.allgather_bytes(name);
  CacheTeam team;
  team.rank = group.rank();
  for (size_t r = 0; r < hosts.size(); ++r) {
    int leader = static_cast<int>(r);
    for (size_t q = 0; q < r; ++q) {
      if (hosts[q] == hosts[r]) {
        leader = static_cast<int>(q);
        break;
      }
    }
    team.machine_leader.push_back(leader);
    if (hosts[r] == hosts[static_cast<size_t>(group.rank())]) {
      if (static_cast<int>(r) < group.rank()) ++team.local_index;
    }
  }
  team.local_count = static_cast<int>(std::count(hosts.begin(), hosts.end(), hosts[static_cast<size_t>(group.rank())]));
  team.allgather = [&group](const std::string& bytes) { return group.allgather_bytes(bytes); };
  team.barrier = [&group] { group.barrier(); };
  return team;
}

}  // namespace

ImageCache build_image_cache_sharded(const Dataset& dataset, const ImageCacheOptions& options, Collective& group) {
  // In memory every rank would hold a copy: a set that would not fit that way
  // goes to the disk cache, one file per machine that its ranks map.
  const CacheTeam team = cache_team(group);
  const CacheMode own = resolved_cache_mode(dataset, options, team.local_count);
  // Every rank the same: the most frugal any of them chose (memory, then disk, then none).
  CacheMode agreed = CacheMode::memory;
  for (const std::string& word : group.allgather_bytes(enum_name(own))) {
    const CacheMode m = parse_cache_mode(word);
    if (m == CacheMode::none || (m == CacheMode::disk && agreed == CacheMode::memory)) agreed = m;
  }
  if (agreed != CacheMode::memory) {
    ImageCacheOptions shared = options;
    DataCachePolicy policy = options.cache.value_or(default_data_cache_policy());
    policy.mode = agreed;
    shared.cache = policy;
    return build_image_cache(dataset, shared, &team);
  }
  const RowRange mine = shard_rows(static_cast<int64_t>(dataset.size()), group.rank(), group.world_size());
  std::vector<size_t> rows(static_cast<size_t>(mine.size()));
  std::iota(rows.begin(), rows.end(), static_cast<size_t>(mine.begin));
  ImageCacheOptions o = options;
  o.allow_empty = true;  // a share may hold only broken files; the whole set decides
  o.warn_skipped = false;
  ImageCache share = build_image_cache(subset(dataset, rows), o);

  ImageCache all;
  all.class_names = dataset.class_names;
  all.images = group.allgather_rows(share.images);
  all.labels = group.allgather_rows(share.labels);
  for (const std::string& bytes : group.allgather_bytes(share_files_json(share))) {
    const auto j = nlohmann::json::parse(bytes);
    for (const auto& p : j["paths"]) all.paths.emplace_back(p.get<std::string>());
    for (const auto& s : j["skipped"]) all.skipped.push_back({s[0].get<std::string>(), s[1].get<std::string>()});
  }
  all.seconds = share.seconds;
  if (all.size() == 0) {
    throw Error("none of the " + std::to_string(dataset.size()) + " files in " + dataset.source +
                    " could be decoded (" + describe_skipped(all.skipped, 2) + ")",
                "check that the folder holds JPEG, PNG, BMP or GIF images");
  }
  if (!all.skipped.empty()) log::warn(describe_skipped(all.skipped));
  return all;
}

torch::Tensor compute_prefix_outputs_sharded(nn::NetworkImpl& net, const RowSource& images, size_t prefix,
                                             const torch::Device& device, int64_t batch_size, const std::string& what,
                                             Collective& group) {
  const RowRange mine = shard_rows(images.size(), group.rank(), group.world_size());
  torch::Tensor share = compute_prefix_outputs(net, images.narrow(mine.begin, mine.size()), prefix, device,
                                               batch_size, what);
  // Large features of ranks that share one machine go into one file they all
  // map (one copy in the page cache) instead of a gathered copy in each rank.
  std::string shape;
  if (share.size(0) > 0) shape = fmt::format("{}", fmt::join(share.sizes().slice(1), ","));
  std::vector<int64_t> sizes = {images.size()};
  for (const std::string& s : group.allgather_bytes(shape)) {
    if (s.empty() || sizes.size() > 1) continue;
    std::istringstream dims(s);
    for (std::string d; std::getline(dims, d, ',');) sizes.push_back(std::stoll(d));
  }
  uint64_t bytes = static_cast<uint64_t>(share.element_size());
  for (int64_t d : sizes) bytes *= static_cast<uint64_t>(d);
  const CacheTeam team = cache_team(group);
  const bool one_machine = team.local_count == group.world_size();
  const auto cpu = group.allgather_bytes(share.device().is_cpu() ? "1" : "0");
  const bool all_cpu = std::all_of(cpu.begin(), cpu.end(), [](const std::string& c) { return c == "1"; });
  if (!one_machine || !all_cpu || bytes <= largest_in_memory_features_bytes()) return group.allgather_rows(share);

  const std::filesystem::path folder = default_data_cache_policy().folder();
  const std::string made = group.is_main() ? (folder / partial_name("features")).string() : "";
  torch::Tensor all;
  if (group.is_main()) all = shared_file_tensor(made, sizes, share.scalar_type(), /*create=*/true);
  const std::string path = group.allgather_bytes(made)[0];
  if (!group.is_main()) all = shared_file_tensor(path, sizes, share.scalar_type(), /*create=*/false);
  if (mine.size() > 0) all.narrow(0, mine.begin, mine.size()).copy_(share);
  share = torch::Tensor();
  group.barrier();  // every rank has mapped it and written its rows
  if (group.is_main()) {
    std::error_code ec;
    std::filesystem::remove(path, ec);
    log::infof("the features of the {} ({:.2f} GB) are in one file under {} that the {} ranks map", what,
               bytes / 1e9, folder.string(), group.world_size());
  }
  return all;
}

EvalResult sum_evaluations(const EvalResult& local, int64_t num_classes, Collective& group) {
  const int64_t classes = num_classes;
  auto sums = torch::zeros({3 + classes}, torch::kFloat64);
  sums[0] = local.loss * static_cast<double>(local.count);
  sums[1] = local.accuracy * static_cast<double>(local.count);
  sums[2] = static_cast<double>(local.count);
  for (int64_t k = 0; k < classes && k < static_cast<int64_t>(local.predicted_counts.size()); ++k) {
    sums[3 + k] = static_cast<double>(local.predicted_counts[k]);
  }
  std::vector<torch::Tensor> t = {sums};
  group.allreduce_sum(t);
  EvalResult r;
  r.count = static_cast<int64_t>(std::llround(sums[2].item<double>()));
  if (r.count > 0) {
    r.loss = sums[0].item<double>() / static_cast<double>(r.count);
    r.accuracy = std::llround(sums[1].item<double>()) / static_cast<double>(r.count);
  }
  for (int64_t k = 0; k < classes; ++k) r.predicted_counts.push_back(std::llround(sums[3 + k].item<double>()));
  return r;
}

}  // namespace tabby
