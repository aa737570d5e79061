"""The Python peer's models and input transforms: tabby's presets rebuilt as a
PyTorch + torchvision user would write them, layer for layer.

Differences that are the peer's usual style rather than tabby's (they do not
change the amount of model work):
- augmentation (RandomFlip + RandomRotation) runs per image on PIL images in
  the DataLoader's transform, as torchvision users write it; tabby runs it on
  the batch tensor inside the model;
- input scaling is in the transform (ToTensor, Normalize) or a first scaling
  module; tabby folds it into the model's first layer;
- batch norm of the frozen MobileNetV2 runs as separate modules (plain
  torchvision); tabby folds inference batch norm into the convolutions.
"""
import json
import struct

import torch
import torch.nn as nn
import torchvision
from torchvision import transforms

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

class Scale(nn.Module):
    """x * scale + offset, like Keras' Rescaling layer."""

    def __init__(self, scale, offset=0.0):
        super().__init__()
        self.scale, self.offset = scale, offset

    def forward(self, x):
        return x * self.scale + self.offset


def _flatten_features(features, size):
    with torch.no_grad():
        return features(torch.zeros(1, 3, size, size)).flatten(1).shape[1]


def tutorial_cnn(num_classes, size):
    """Tutorial model 1: raw 0-255 input, 3 x (valid Conv 3x3 + ReLU + MaxPool 2),
    Flatten, Dense 128 ReLU, Dropout 0.5, Dense (softmax in the loss)."""
    features = nn.Sequential(
        Scale(255.0),  # ToTensor gives [0,1]; the Keras model sees raw pixels
        nn.Conv2d(3, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten())
    n = _flatten_features(features, size)
    return nn.Sequential(features, nn.Linear(n, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, num_classes))


def tutorial_cnn_augmented(num_classes, size):
    """Tutorial model 3: rescale to [-1,1], 3 x (same Conv 3x3 64/128/256 + ReLU +
    MaxPool 2), Flatten, Dense 256 ReLU, Dropout 0.5, Dense. Augmentation is in
    the transform (see train_transform)."""
    features = nn.Sequential(
        Scale(2.0, -1.0),  # [0,1] -> [-1,1], as Rescaling(1/127.5, -1) on raw pixels
        nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(128, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten())
    n = _flatten_features(features, size)
    return nn.Sequential(features, nn.Linear(n, 256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, num_classes))


class FrozenMobileNetV2(nn.Module):
    """torchvision MobileNetV2 features, frozen (no gradients, batch norm in
    inference mode), then global average pooling, Dropout 0.2 and a Dense layer:
    the transfer-learning tutorial's model."""

    def __init__(self, num_classes):
        super().__init__()
        self.features = torchvision.models.mobilenet_v2(weights=None).features
        for p in self.features.parameters():
            p.requires_grad_(False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.2)
        self.dense = nn.Linear(1280, num_classes)

    def train(self, mode=True):
        super().train(mode)
        self.features.eval()  # frozen: batch norm keeps its statistics
        return self

    def forward(self, x):
        return self.dense(self.dropout(self.pool(self.features(x)).flatten(1)))


def mobilenet_v2_frozen(num_classes, size):
    return FrozenMobileNetV2(num_classes)


DTYPES = {"F32": torch.float32, "I64": torch.int64}


def load_safetensors(path):
    """name -> tensor from a .safetensors file (8-byte header length, JSON
    header, raw little-endian data): F32 weights, I64 batch-norm counters."""
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
        data = f.read()
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: {name} is {info['dtype']}, only F32 and I64 are read here")
        begin, end = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=dtype) if end > begin else torch.zeros(0, dtype=dtype)
        tensors[name] = t.reshape(info["shape"])
    return tensors


def load_backbone_weights(model, path):
    """torchvision-named ImageNet weights (features.*) into a FrozenMobileNetV2."""
    state = {k[len("features."):]: v for k, v in load_safetensors(path).items() if k.startswith("features.")}
    model.features.load_state_dict(state, strict=True)


# name -> (builder, augmented, input normalisation); keys match bench/driver.py's cases.
MODELS = {
    "tutorial-cnn": (tutorial_cnn, False, "plain"),
    "tutorial-cnn-augmented": (tutorial_cnn_augmented, True, "plain"),
    "mobilenet_v2-augmented": (mobilenet_v2_frozen, True, "imagenet"),
    "mobilenet_v2": (mobilenet_v2_frozen, False, "imagenet"),
}


def build_model(name, num_classes, size):
    builder, _, _ = MODELS[name]
    return builder(num_classes, size)


def _tail(name):
    _, _, norm = MODELS[name]
    tail = [transforms.ToTensor()]
    if norm == "imagenet":
        tail.append(transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD))
    return tail


def train_transform(name, size):
    """Resize to size x size (torchvision's bilinear), then augmentation when the
    model has it: RandomFlip("horizontal") + RandomRotation(0.1) = +-36 degrees."""
    _, augmented, _ = MODELS[name]
    steps = [transforms.Resize((size, size))]
    if augmented:
        steps += [transforms.RandomHorizontalFlip(),
                  transforms.RandomRotation(36, interpolation=transforms.InterpolationMode.BILINEAR)]
    return transforms.Compose(steps + _tail(name))


def eval_transform(name, size):
    return transforms.Compose([transforms.Resize((size, size))] + _tail(name))
