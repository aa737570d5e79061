"""MLServer's custom runtime for the benchmark: the Open Inference Protocol
input "images" FP32 [N,3,H,W] (pixels 0-255, as tabby serve takes it) in,
"probabilities" FP32 [N,C] out. Batches come from MLServer's adaptive batching.

Settings (model-settings.json, parameters.extra): run (the tabby run folder),
threads (torch intra-op threads of each inference worker; 0: every core)."""
import numpy as np
import torch
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse

from peer_mobilenet import load_run, normalise_pixels, probabilities


class MobileNetRuntime(MLModel):
    async def load(self) -> bool:
        extra = self.settings.parameters.extra or {}
        self._model, self._classes, self._size = load_run(extra["run"], int(extra.get("threads", 0)))
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        pixels = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32, copy=False)
        batch = torch.from_numpy(pixels).reshape(-1, 3, *self._size)
        probs = probabilities(self._model, normalise_pixels(batch)).numpy()
        return InferenceResponse(model_name=self.name, id=payload.id,
                                 outputs=[NumpyCodec.encode_output("probabilities", probs)])
