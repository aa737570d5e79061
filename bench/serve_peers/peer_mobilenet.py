"""The served model of both peers: the tabby run's MobileNetV2 (ImageNet
features, its trained 2-class head) rebuilt with torchvision and loaded from the
run's weights.safetensors, in eval mode; and the preprocessing tabby applies
(pixels 0-255 -> ImageNet normalisation; images resized to the run's size,
bilinear, aspect not kept)."""
import json
import os

import torch
from torchvision import transforms

from peer_common import configure_threads
from peer_models import IMAGENET_MEAN, IMAGENET_STD, FrozenMobileNetV2, load_safetensors


def load_run(run, threads=0):
    """(model, classes, (height, width)); threads: torch's intra-op threads (0: every core)."""
    configure_threads(threads)
    with open(os.path.join(run, "run.json")) as f:
        record = json.load(f)
    classes = record["classes"]
    model = FrozenMobileNetV2(len(classes))
    weights = load_safetensors(os.path.join(run, "weights.safetensors"))
    for part in ("features", "dense"):
        prefix = part + "."
        getattr(model, part).load_state_dict({k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)})
    model.eval()
    return model, classes, tuple(record["image_size"])


def image_transform(size):
    """PIL image -> normalised CHW tensor, as the Flask peer and torchvision users write it."""
    return transforms.Compose([transforms.Resize(size), transforms.ToTensor(),
                               transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


_MEAN = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255
_STD = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255


def normalise_pixels(batch):
    """NCHW float pixels 0-255 (the Open Inference Protocol input tabby takes) -> the network's input."""
    return (batch - _MEAN) / _STD


def probabilities(model, batch):
    with torch.no_grad():
        return torch.softmax(model(batch), dim=1)
