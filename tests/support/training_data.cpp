#include "support/training_data.h"

#include <unistd.h>

#include <cstdlib>
#include <random>

#include "support/image_encode.h"
#include "support/test_support.h"
#include "tabby/image/image.h"

namespace tabby::testing {

void write_two_class_folder(const std::filesystem::path& root, int per_class, int size, int seed) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::uniform_int_distribution<int> noise(0, 90);
  for (const std::string cls : {"left", "right"}) {
    for (int i = 0; i < per_class; ++i) {
      Image image(size, size);
      for (int y = 0; y < size; ++y) {
        for (int x = 0; x < size; ++x) {
          const bool bright = cls == "left" ? x < size / 2 : x >= size / 2;
          for (int c = 0; c < 3; ++c) {
            image.pixels[(static_cast<size_t>(y) * size + x) * 3 + c] =
                static_cast<uint8_t>((bright ? 150 : 20) + noise(rng));
          }
        }
      }
      write_bytes(root / cls / ("img_" + std::to_string(i) + ".png"), encode_png(image));
    }
  }
}

pid_t spawn_tabby(const std::vector<std::string>& args, const std::filesystem::path& log) {
  std::string line = "exec " + shell_quote(std::getenv("TABBY_BIN"));
  for (const auto& a : args) line += " " + shell_quote(a);
  line += " >>" + shell_quote(log.string()) + " 2>&1";
  const pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", line.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

void write_tinted_images(const std::filesystem::path& dir, int count, bool red, int seed) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::uniform_int_distribution<int> noise(0, 60);
  for (int i = 0; i < count; ++i) {
    Image image(16, 16);
    for (size_t p = 0; p < image.pixels.size(); p += 3) {
      image.pixels[p] = static_cast<uint8_t>((red ? 170 : 30) + noise(rng));
      image.pixels[p + 1] = static_cast<uint8_t>(40 + noise(rng));
      image.pixels[p + 2] = static_cast<uint8_t>((red ? 30 : 170) + noise(rng));
    }
    write_bytes(dir / ("img_" + std::to_string(i) + ".png"), encode_png(image));
  }
}

}  // namespace tabby::testing
