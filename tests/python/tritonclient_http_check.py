"""Asks a running `tabby serve` for probabilities through tritonclient.http at
its defaults, and prints what came back as JSON for the calling test to
compare with `tabby predict`.

    tritonclient_http_check.py HOST:PORT MODEL CASES.json

CASES.json: {"height": H, "width": W, "images": [{"file": encoded image,
"pixels": its RGB pixels at the model's size, float32 little-endian, 3xHxW}]}.

For each image, by name:
  fp32_binary, bytes_binary   the input as binary tensor data (tritonclient's
                              default; for an encoded image, the only way it
                              sends one), the output as binary (its default
                              when no output is named)
  fp32_json                   the input as JSON (binary_data=False)
  fp32_json_out               input and output as JSON, no binary anywhere
  *_top                       the same with the classification extension
                              (class_count = the number of classes), as
                              "probability:index:label" strings
and "batch": every encoded image in one request, one row each.
Exit status 2 when tritonclient cannot be imported, 1 on any other failure.
"""

import json
import sys
import traceback

try:
    import numpy as np
    import tritonclient.http as httpclient
except ImportError as error:
    print(f"tritonclient.http does not import: {error} (scripts/install-test-tools.sh)", file=sys.stderr)
    sys.exit(2)


def probabilities(result):
    return result.as_numpy("probabilities").astype(float).tolist()


def top_strings(result):
    return [[s.decode() if isinstance(s, bytes) else str(s) for s in row]
            for row in result.as_numpy("probabilities")]


def fp32_input(pixels, binary):
    tensor = httpclient.InferInput("images", list(pixels.shape), "FP32")
    tensor.set_data_from_numpy(pixels, binary_data=binary)
    return tensor


def bytes_input(encoded):
    array = np.array([[e] for e in encoded], dtype=np.object_)
    tensor = httpclient.InferInput("image_bytes", list(array.shape), "BYTES")
    tensor.set_data_from_numpy(array)
    return tensor


def ask(client, model, tensor, classes):
    """The probabilities and the top-`classes` strings, each from its own request."""
    plain = probabilities(client.infer(model, [tensor]))
    top = top_strings(client.infer(
        model, [tensor], outputs=[httpclient.InferRequestedOutput("probabilities", class_count=classes)]))
    return plain, top


def main():
    address, model, cases_path = sys.argv[1:4]
    with open(cases_path) as f:
        cases = json.load(f)
    client = httpclient.InferenceServerClient(url=address)
    if not client.is_model_ready(model):
        raise RuntimeError(f"model {model} is not ready")
    classes = len(client.get_model_metadata(model)["parameters"]["classes"])
    height, width = cases["height"], cases["width"]
    answers = {}
    encoded_all = []
    for case in cases["images"]:
        with open(case["file"], "rb") as f:
            encoded = f.read()
        encoded_all.append(encoded)
        pixels = np.fromfile(case["pixels"], dtype="<f4").reshape(1, 3, height, width)
        got = {}
        got["fp32_binary"], got["fp32_binary_top"] = ask(client, model, fp32_input(pixels, True), classes)
        got["fp32_json"], got["fp32_json_top"] = ask(client, model, fp32_input(pixels, False), classes)
        json_out = client.infer(model, [fp32_input(pixels, False)],
                                outputs=[httpclient.InferRequestedOutput("probabilities", binary_data=False)])
        got["fp32_json_out"] = probabilities(json_out)
        json_top = client.infer(model, [fp32_input(pixels, False)], outputs=[
            httpclient.InferRequestedOutput("probabilities", binary_data=False, class_count=classes)])
        got["fp32_json_out_top"] = top_strings(json_top)
        got["bytes_binary"], got["bytes_binary_top"] = ask(client, model, bytes_input([encoded]), classes)
        answers[case["file"]] = got
    batch, batch_top = ask(client, model, bytes_input(encoded_all), classes)
    print(json.dumps({"images": answers, "batch": batch, "batch_top": batch_top,
                      "files": [case["file"] for case in cases["images"]]}))


if __name__ == "__main__":
    try:
        main()
    except Exception:  # the calling test shows the trace
        traceback.print_exc()
        sys.exit(1)
