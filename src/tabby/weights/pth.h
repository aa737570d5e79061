// PyTorch .pth state dicts, read without running any of the file's code.
//
// Reading understands what torch.save writes:
//  - the zip format (PyTorch >= 1.6, what torchvision's newer download links
//    serve): `<prefix>/data.pkl` (a pickle of the dict) plus one entry
//    `<prefix>/data/<key>` per storage;
//  - the older "legacy" stream format (a few pickles followed by raw storages),
//    which torchvision's oldest weights (VGG, SqueezeNet, MobileNetV2) still use.
// The pickle goes through a restricted unpickler (pickle_reader.h): a file whose
// pickle asks for anything but a dict of tensors is refused with an Error naming
// what it asked for. A top-level dict holding the tensors under "state_dict" or
// "model" (a training checkpoint) is accepted too. Tensors come out contiguous,
// with strides and storage offsets applied.

#pragma once

#include <filesystem>
#include <string>

#include "tabby/weights/raw_tensor.h"

namespace tabby {

RawTensorMap read_pth(const std::filesystem::path& path);

// `source_name` names the bytes' origin in error messages (usually the path).
RawTensorMap parse_pth(const std::string& bytes, const std::string& source_name);

// True when the bytes look like a torch.save file of either format (zip, or a
// pickle stream); used to pick a reader by content.
bool looks_like_pth(const std::string& bytes);

}  // namespace tabby
