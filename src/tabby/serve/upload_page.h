// The page `tabby serve` answers GET / with: pick or drop photos, see each
// one's thumbnail and its top classes as bars. One self-contained file: no
// script, style or font is loaded from anywhere else.
#pragma once

#include <string>
#include <vector>

namespace tabby::serve {

// The page for these models (the first is preselected).
std::string upload_page(const std::vector<std::string>& models, const std::string& version);

}  // namespace tabby::serve
