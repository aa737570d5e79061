"""tritonclient.grpc, NVIDIA's client of the Open Inference Protocol over
gRPC, against a running `tabby serve --grpc-port`: health, metadata, an
encoded image as BYTES, its pixels as FP32, and the classification
extension. Run by tests/torch/test_serve_grpc.cpp with PYTHONPATH set to the
test tools (scripts/install-test-tools.sh); exits non-zero on a mismatch.

    tritonclient_grpc_check.py --url HOST:PORT --model NAME --image FILE --expect P0,P1,...
"""
import argparse
import sys

import numpy as np

try:
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException
except ImportError as error:  # exit 2: the test tells a missing client from a failed check
    print(f"tritonclient.grpc does not import: {error}", file=sys.stderr)
    sys.exit(2)


def check(condition, message):
    if not condition:
        sys.exit("tritonclient check failed: " + message)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--expect", required=True, help="the image's probabilities, comma-separated")
    args = parser.parse_args()
    expected = np.array([float(p) for p in args.expect.split(",")], dtype=np.float32)

    client = grpcclient.InferenceServerClient(url=args.url)
    check(client.is_server_live(), "the server is not live")
    check(client.is_server_ready(), "the server is not ready")
    check(client.is_model_ready(args.model), "the model is not ready")
    server = client.get_server_metadata()
    check(server.name == "tabby" and "classification" in server.extensions, f"server metadata {server}")
    model = client.get_model_metadata(args.model)
    inputs = {t.name: (t.datatype, list(t.shape)) for t in model.inputs}
    check(inputs.get("image_bytes") == ("BYTES", [-1]), f"model inputs {inputs}")
    _, _, height, width = inputs["images"][1]

    # The encoded image, as BYTES (tritonclient sends them in raw_input_contents).
    with open(args.image, "rb") as f:
        encoded = f.read()
    image = grpcclient.InferInput("image_bytes", [1], "BYTES")
    image.set_data_from_numpy(np.array([encoded], dtype=np.object_))
    result = client.infer(args.model, [image], outputs=[grpcclient.InferRequestedOutput("probabilities")],
                          request_id="tc-1")
    probabilities = result.as_numpy("probabilities")
    check(probabilities.shape == (1, len(expected)), f"probabilities of shape {probabilities.shape}")
    check(np.allclose(probabilities[0], expected, atol=1e-5), f"{probabilities[0]} is not {expected}")
    check(result.get_response().id == "tc-1", "the request's id did not come back")

    # The classification extension: "probability:index:label", the best first.
    top = client.infer(args.model, [image], outputs=[grpcclient.InferRequestedOutput("probabilities", class_count=1)])
    best = top.as_numpy("probabilities")[0][0].decode()
    score, index, _label = best.split(":", 2)
    check(int(index) == int(np.argmax(expected)), f"best class {best}, expected index {np.argmax(expected)}")
    check(abs(float(score) - expected.max()) < 1e-5, f"best class {best}, expected probability {expected.max()}")

    # FP32 pixels of the model's size (zeros: any valid tensor), and one of the wrong size.
    pixels = grpcclient.InferInput("images", [1, 3, height, width], "FP32")
    pixels.set_data_from_numpy(np.zeros((1, 3, height, width), dtype=np.float32))
    answer = client.infer(args.model, [pixels]).as_numpy("probabilities")
    check(answer.shape == (1, len(expected)) and abs(float(answer.sum()) - 1) < 1e-4, f"FP32 answer {answer}")
    wrong = grpcclient.InferInput("images", [1, 3, height + 1, width], "FP32")
    wrong.set_data_from_numpy(np.zeros((1, 3, height + 1, width), dtype=np.float32))
    try:
        client.infer(args.model, [wrong])
        check(False, "a tensor of the wrong shape was accepted")
    except InferenceServerException as e:
        check(e.status() == "StatusCode.INVALID_ARGUMENT", f"wrong shape answered {e.status()}: {e.message()}")
    print("tritonclient.grpc: every check passed")


if __name__ == "__main__":
    main()
