"""The serving peer: the same MobileNetV2 model as a tabby run, behind Flask
(run by gunicorn's sync workers, as Flask is served in production).

POST /predictions/<model> with an encoded image as the body answers
{"label", "probability"}, like tabby serve's route of the same name: PIL
decodes and resizes it to the run's size (bilinear, aspect not kept, as tabby
trained it), torchvision's ImageNet normalisation, the network in eval mode
under no_grad, softmax.

Settings (environment, read by each worker): TABBY_RUN (the run folder),
PEER_THREADS (torch intra-op threads per worker), PEER_PRECISION (fp32, or
bf16: the forward pass under torch.autocast("cpu", dtype=torch.bfloat16), as
the PyTorch AMP recipe writes it).

  gunicorn -w 2 -b 127.0.0.1:8081 --chdir bench peer_serve:app
"""
import io
import json
import os

import torch
from flask import Flask, jsonify, request
from PIL import Image
from torchvision import transforms

from peer_common import configure_threads
from peer_models import IMAGENET_MEAN, IMAGENET_STD, FrozenMobileNetV2, load_safetensors

RUN = os.environ["TABBY_RUN"]
configure_threads(int(os.environ.get("PEER_THREADS", "0")))
BF16 = os.environ.get("PEER_PRECISION", "fp32") == "bf16"

with open(os.path.join(RUN, "run.json")) as f:
    record = json.load(f)
CLASSES = record["classes"]
HEIGHT, WIDTH = record["image_size"]

model = FrozenMobileNetV2(len(CLASSES))
weights = load_safetensors(os.path.join(RUN, "weights.safetensors"))
model.features.load_state_dict({k[len("features."):]: v for k, v in weights.items() if k.startswith("features.")})
model.dense.load_state_dict({k[len("dense."):]: v for k, v in weights.items() if k.startswith("dense.")})
model.eval()
preprocess = transforms.Compose([transforms.Resize((HEIGHT, WIDTH)), transforms.ToTensor(),
                                 transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
app = Flask(__name__)


@app.get("/health")
def health():
    return jsonify(ready=True)


@app.post("/predictions/<name>")
def predictions(name):
    try:
        image = Image.open(io.BytesIO(request.get_data())).convert("RGB")
    except Exception as e:  # noqa: BLE001 - any decoding failure is the client's
        return jsonify(error=f"cannot read the upload as an image: {e}"), 400
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=BF16):
        logits = model(preprocess(image).unsqueeze(0))
    probs = torch.softmax(logits.float(), dim=1)[0]
    k = int(probs.argmax())
    return jsonify(label=CLASSES[k], probability=float(probs[k]))
