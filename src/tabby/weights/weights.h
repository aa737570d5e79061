// Everything about weight files in one include: tensors as bytes, safetensors,
// PyTorch .pth state dicts, checksums, downloads and pretrained-weight lookup.
#pragma once

#include "tabby/weights/download.h"
#include "tabby/weights/pretrained.h"
#include "tabby/weights/pth.h"
#include "tabby/weights/raw_tensor.h"
#include "tabby/weights/safetensors.h"
#include "tabby/weights/sha256.h"
#include "tabby/weights/weights_file.h"
