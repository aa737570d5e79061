// Small operations on datasets that do not care where the samples came from.
#include "tabby/dataset/dataset.h"

#include "tabby/dataset/shuffle.h"
#include "tabby/util/error.h"
#include "tabby/util/rng.h"

namespace tabby {

std::vector<int64_t> Dataset::class_counts() const {
  std::vector<int64_t> counts(class_names.size(), 0);
  for (const Sample& s : samples) {
    if (s.label >= 0 && static_cast<size_t>(s.label) < counts.size()) ++counts[static_cast<size_t>(s.label)];
  }
  return counts;
}

Dataset subset(const Dataset& dataset, const std::vector<size_t>& indices) {
  Dataset out;
  out.class_names = dataset.class_names;
  out.source = dataset.source;
  out.samples.reserve(indices.size());
  for (size_t i : indices) {
    if (i >= dataset.samples.size()) {
      throw Error("sample index " + std::to_string(i) + " is out of range: '" + dataset.source + "' has " +
                  std::to_string(dataset.samples.size()) + " samples");
    }
    out.samples.push_back(dataset.samples[i]);
  }
  return out;
}

Dataset shuffled(const Dataset& dataset, uint64_t seed) {
  const uint64_t derived = derive_seed(seed, {static_cast<uint64_t>(SeedPurpose::shuffle_files)});
  return subset(dataset, seeded_permutation(dataset.samples.size(), derived));
}

std::string describe_skipped(const std::vector<SkippedFile>& skipped, size_t max_named) {
  if (skipped.empty()) return "no files skipped";
  std::string out = std::to_string(skipped.size()) + (skipped.size() == 1 ? " file" : " files") +
                    " could not be decoded and " + (skipped.size() == 1 ? "was" : "were") + " skipped: ";
  for (size_t i = 0; i < skipped.size() && i < max_named; ++i) {
    out += (i ? "; " : "") + skipped[i].reason;
  }
  if (skipped.size() > max_named) out += "; and " + std::to_string(skipped.size() - max_named) + " more";
  return out;
}

}  // namespace tabby
