// Which files tabby takes as images: one list, used by folder scans,
// `tabby predict` on folders and the messages that name them.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace tabby {

// Lower case, with the dot: ".jpg", ".jpeg", ".png", ".bmp", ".gif".
const std::vector<std::string>& image_extensions();

// Whether `path`'s extension (any case) is one of image_extensions().
bool has_image_extension(const std::filesystem::path& path);

// ".jpg .jpeg .png .bmp .gif", for messages.
std::string image_extensions_text();

}  // namespace tabby
