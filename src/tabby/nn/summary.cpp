#include "tabby/nn/summary.h"

#include <fmt/format.h>

namespace tabby::nn {

namespace {

std::string with_commas(int64_t v) {
  std::string digits = std::to_string(v < 0 ? -v : v), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return v < 0 ? "-" + out : out;
}

// Display width of a UTF-8 string (box characters count as one column).
size_t columns(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string pad_right(const std::string& s, size_t width) {
  size_t w = columns(s);
  return w >= width ? s : s + std::string(width - w, ' ');
}

std::string pad_left(const std::string& s, size_t width) {
  size_t w = columns(s);
  return w >= width ? s : std::string(width - w, ' ') + s;
}

std::string repeat(const std::string& s, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += s;
  return out;
}

}  // namespace

std::string keras_shape(const std::vector<int64_t>& shape) {
  std::vector<int64_t> s = shape;
  if (s.size() == 3) s = {shape[1], shape[2], shape[0]};  // CHW -> HWC as Keras prints
  std::string out = "(None";
  for (int64_t d : s) out += ", " + std::to_string(d);
  return out + ")";
}

std::string param_bytes_text(int64_t params) {
  const double bytes = static_cast<double>(params) * 4.0;
  if (bytes >= 1024.0 * 1024.0 * 1024.0) return fmt::format("{:.2f} GB", bytes / (1024.0 * 1024.0 * 1024.0));
  if (bytes >= 1024.0 * 1024.0) return fmt::format("{:.2f} MB", bytes / (1024.0 * 1024.0));
  if (bytes >= 1024.0) return fmt::format("{:.2f} KB", bytes / 1024.0);
  return fmt::format("{:.2f} B", bytes);
}

ModelSummary summarize(const NetworkImpl& net) {
  ModelSummary s;
  s.model_name = net.spec().name;
  for (const auto& e : net.entries()) {
    SummaryRow row;
    row.name = e.name;
    row.type = e.backbone ? "Functional" : e.type;
    row.shape = e.output_shape;
    auto [trainable, frozen] = e.backbone ? count_keras_params(*e.backbone) : count_keras_params(*e.layer);
    row.params = trainable + frozen;
    row.trainable = trainable;
    s.total += row.params;
    s.trainable += trainable;
    s.non_trainable += frozen;
    s.rows.push_back(row);
  }
  const auto& out = net.output();
  if (out.binary()) {
    s.output = "1 unit, sigmoid (binary: " + std::to_string(net.num_classes()) + " classes)";
  } else {
    s.output = std::to_string(out.units) + " units, " +
               (out.activation == ActivationKind::None ? std::string("logits (softmax for probabilities)")
                                                       : std::string(activation_name(out.activation)));
  }
  return s;
}

std::string format_summary(const ModelSummary& s) {
  const std::vector<std::string> headers = {"Layer (type)", "Output Shape", "Param #"};
  std::vector<std::array<std::string, 3>> cells;
  for (const auto& r : s.rows) {
    std::string params = with_commas(r.params);
    if (r.params != r.trainable && r.trainable > 0) params += " (" + with_commas(r.trainable) + " trainable)";
    cells.push_back({r.name + " (" + r.type + ")", keras_shape(r.shape), params});
  }
  size_t w[3] = {columns(headers[0]), columns(headers[1]), columns(headers[2])};
  for (const auto& c : cells) {
    for (int i = 0; i < 3; ++i) w[i] = std::max(w[i], columns(c[i]));
  }
  for (auto& x : w) x += 2;
  std::string out = "Model: \"" + s.model_name + "\"\n";
  out += "┏" + repeat("━", w[0]) + "┳" + repeat("━", w[1]) + "┳" + repeat("━", w[2]) + "┓\n";
  out += "┃ " + pad_right(headers[0], w[0] - 1) + "┃ " + pad_right(headers[1], w[1] - 1) + "┃" +
         pad_left(headers[2], w[2] - 1) + " ┃\n";
  out += "┡" + repeat("━", w[0]) + "╇" + repeat("━", w[1]) + "╇" + repeat("━", w[2]) + "┩\n";
  for (size_t i = 0; i < cells.size(); ++i) {
    const auto& c = cells[i];
    out += "│ " + pad_right(c[0], w[0] - 1) + "│ " + pad_right(c[1], w[1] - 1) + "│" + pad_left(c[2], w[2] - 1) +
           " │\n";
    if (i + 1 < cells.size()) {
      out += "├" + repeat("─", w[0]) + "┼" + repeat("─", w[1]) + "┼" + repeat("─", w[2]) + "┤\n";
    }
  }
  out += "└" + repeat("─", w[0]) + "┴" + repeat("─", w[1]) + "┴" + repeat("─", w[2]) + "┘\n";
  out += " Total params: " + with_commas(s.total) + " (" + param_bytes_text(s.total) + ")\n";
  out += " Trainable params: " + with_commas(s.trainable) + " (" + param_bytes_text(s.trainable) + ")\n";
  out += " Non-trainable params: " + with_commas(s.non_trainable) + " (" + param_bytes_text(s.non_trainable) + ")\n";
  out += " Output: " + s.output + "\n";
  return out;
}

nlohmann::json summary_to_json(const ModelSummary& s) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& r : s.rows) {
    std::vector<int64_t> hwc = r.shape;
    if (hwc.size() == 3) hwc = {r.shape[1], r.shape[2], r.shape[0]};
    layers.push_back({{"name", r.name}, {"type", r.type}, {"output_shape", hwc}, {"params", r.params},
                      {"trainable_params", r.trainable}});
  }
  return {{"model", s.model_name},   {"layers", layers},
          {"total_params", s.total}, {"trainable_params", s.trainable},
          {"non_trainable_params", s.non_trainable}, {"output", s.output}};
}

}  // namespace tabby::nn
