"""TorchServe's handler for the benchmark: POST /predictions/<model> with an
encoded image as the body answers {"label", "probability"}, like tabby serve's
route of the same name. PIL decodes, torchvision resizes and normalises, the
requests of a TorchServe batch run as one forward pass.

A module-level handle() (no class), so TorchServe's loader has one entry point;
PEER_THREADS (environment of the TorchServe process, inherited by its workers)
sets torch's intra-op threads of each worker."""
import io
import os

import torch
from PIL import Image

from peer_mobilenet import image_transform, load_run, probabilities

_state = {}


def _initialize(context):
    # The archive holds the run's run.json and weights.safetensors at its top.
    model, classes, size = load_run(context.system_properties["model_dir"], int(os.environ.get("PEER_THREADS", "0")))
    _state.update(model=model, classes=classes, transform=image_transform(size))


def handle(data, context):
    if not _state:
        _initialize(context)
    if data is None:  # TorchServe's load-time call
        return None
    images = []
    for row in data:
        body = row.get("data") or row.get("body")
        images.append(_state["transform"](Image.open(io.BytesIO(body)).convert("RGB")))
    probs = probabilities(_state["model"], torch.stack(images))
    top = probs.max(dim=1)
    return [{"label": _state["classes"][int(k)], "probability": float(p)} for p, k in zip(top.values, top.indices)]
