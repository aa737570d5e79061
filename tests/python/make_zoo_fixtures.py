#!/usr/bin/python3
"""Reference fixtures for tabby's model zoo, made with Debian's python3-torchvision.

  make_zoo_fixtures.py make OUTDIR [ARCH ...]
      For each architecture (all by default): a torchvision model with random
      weights and random batch-norm statistics, in eval mode, and a fixed random
      input. Writes OUTDIR/<arch>.weights.safetensors (the state dict) and
      OUTDIR/<arch>.io.safetensors ("input", "output" = logits of the full model,
      "features" = the last feature map). For vgg16 only the feature part is
      covered (its classifier would make a 528 MB file): the weights are the
      "features.*" tensors and there is no "output". OUTDIR/<arch>.names.json maps
      every name of the full model's state dict to its shape (vgg16's top too).
      vit_b_16 takes 224x224 only: one such image, and its "features" are the
      class token after encoder.ln as (1, 768, 1, 1), tabby's feature map.

  make_zoo_fixtures.py check DIR ARCH ...
      The reverse direction: loads DIR/<arch>.weights.safetensors (written by
      tabby) into torchvision with strict=True, runs DIR/<arch>.io.safetensors'
      "input" and prints one line per arch: "<arch> <max abs diff>" against that
      file's "output" (vgg16: against "features").

Exit status 3 when torch or torchvision cannot be imported (the caller skips);
without arguments the script only checks that and prints this text (status 2).
There is no safetensors package here, so a small reader and writer follow.
"""
import json
import struct
import sys

try:
    import torch
    import torchvision
except Exception as error:  # pragma: no cover - depends on the machine
    print(f"cannot import torchvision: {error}", file=sys.stderr)
    sys.exit(3)

ARCHS = ["mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "resnet18", "resnet50", "vgg16",
         "squeezenet1_1", "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3",
         "efficientnet_v2_s", "convnext_tiny", "regnet_y_400mf", "vit_b_16"]
FEATURES_ONLY = {"vgg16"}
# Non-square on purpose, so a height/width mix-up shows.
INPUT_SHAPE = (2, 3, 64, 80)
# The position embedding fixes ViT's input; one image keeps its cost down.
VIT_INPUT_SHAPE = (1, 3, 224, 224)


def input_shape(arch):
    return VIT_INPUT_SHAPE if arch.startswith("vit_") else INPUT_SHAPE

DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
          torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
          torch.bool: "BOOL"}
NAMES = {name: dtype for dtype, name in DTYPES.items()}


def write_safetensors(path, tensors):
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        # reshape(-1): view(uint8) needs at least one dimension (scalars have none).
        data = tensor.reshape(-1).view(torch.uint8).numpy().tobytes()
        header[name] = {"dtype": DTYPES[tensor.dtype], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)))
        out.write(text)
        for chunk in chunks:
            out.write(chunk)


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (length,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + length])
    base = 8 + length
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dtype = NAMES[info["dtype"]]
        raw = bytearray(blob[base + begin:base + end])
        flat = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        tensors[name] = flat.reshape(info["shape"])
    return tensors


def build(arch):
    """The torchvision model in eval mode; for FEATURES_ONLY archs just its
    `features` Sequential (building VGG16's 123M-parameter classifier is slow)."""
    if arch == "vgg16":
        from torchvision.models import vgg
        return vgg.make_layers(vgg.cfgs["D"]).eval()
    return getattr(torchvision.models, arch)(weights=None).eval()


def full_state_shapes(arch):
    """Names and shapes of the full model's state dict, built without
    initialising anything (only the shapes are wanted)."""
    saved = torch.nn.Linear.reset_parameters, torch.nn.modules.conv._ConvNd.reset_parameters
    torch.nn.Linear.reset_parameters = lambda self: None
    torch.nn.modules.conv._ConvNd.reset_parameters = lambda self: None
    try:
        kwargs = {"init_weights": False} if arch == "vgg16" else {}
        model = getattr(torchvision.models, arch)(weights=None, **kwargs)
    finally:
        torch.nn.Linear.reset_parameters, torch.nn.modules.conv._ConvNd.reset_parameters = saved
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def randomize(model, generator):
    """Random batch-norm statistics and affine weights (so running stats change
    the output), non-zero conv biases, and linear layers scaled so that logits
    are of order one (torchvision's 0.01-std init makes them tiny, which would
    make an absolute tolerance meaningless)."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.2)
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(n, generator=generator) * 0.2)
            module.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,), generator=generator)))
        elif isinstance(module, torch.nn.Conv2d) and module.bias is not None:
            module.bias.data.copy_(torch.randn(module.bias.shape, generator=generator) * 0.05)
        elif isinstance(module, torch.nn.Linear):
            fan_in = module.in_features
            module.weight.data.copy_(torch.randn(module.weight.shape, generator=generator) / fan_in ** 0.5)
            module.bias.data.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)
    # Residual branches end in bn2 (basic block) or bn3 (bottleneck): damping them
    # keeps ResNet activations from growing block after block.
        elif isinstance(module, torch.nn.LayerNorm):  # ConvNeXt's LayerNorm2d too
            n = module.normalized_shape[0]
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(n, generator=generator) * 0.2)
        if hasattr(module, "layer_scale"):  # ConvNeXt: 1e-6 would hide the residual branches
            scale = module.layer_scale
            scale.data.copy_(torch.rand(scale.shape, generator=generator) * 0.2 + 0.05)
        if hasattr(module, "class_token"):  # ViT: zero at initialisation
            module.class_token.data.copy_(torch.randn(module.class_token.shape, generator=generator))
    for module in model.modules():
        last_bn = getattr(module, "bn3", None) or (getattr(module, "bn2", None) if hasattr(module, "downsample") else None)
        if last_bn is not None:
            last_bn.weight.data.mul_(0.2)


def features_of(arch, model, x):
    if arch in FEATURES_ONLY:
        return model(x)
    if arch.startswith("resnet"):
        x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        return model.layer4(model.layer3(model.layer2(model.layer1(x))))
    if arch.startswith("regnet"):
        return model.trunk_output(model.stem(x))
    if arch.startswith("vit_"):
        tokens = model._process_input(x)
        tokens = torch.cat([model.class_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        return model.encoder(tokens)[:, 0].reshape(tokens.shape[0], -1, 1, 1)
    return model.features(x)


def make(outdir, archs):
    for index, arch in enumerate(archs):
        torch.manual_seed(1234 + index)
        generator = torch.Generator().manual_seed(99 + index)
        model = build(arch)
        with torch.no_grad():
            randomize(model, generator)
            x = torch.randn(input_shape(arch), generator=generator)
            io = {"input": x, "features": features_of(arch, model, x)}
            if arch in FEATURES_ONLY:
                state = {"features." + k: v for k, v in model.state_dict().items()}
            else:
                state = model.state_dict()
                io["output"] = model(x)
        with open(f"{outdir}/{arch}.names.json", "w") as out:
            json.dump(full_state_shapes(arch), out)
        write_safetensors(f"{outdir}/{arch}.weights.safetensors", state)
        write_safetensors(f"{outdir}/{arch}.io.safetensors", io)


def check(folder, archs):
    for arch in archs:
        model = build(arch)
        state = read_safetensors(f"{folder}/{arch}.weights.safetensors")
        io = read_safetensors(f"{folder}/{arch}.io.safetensors")
        with torch.no_grad():
            if arch in FEATURES_ONLY:
                part = {k[len("features."):]: v for k, v in state.items()}
                model.load_state_dict(part, strict=True)
                got, want = model(io["input"]), io["features"]
            else:
                model.load_state_dict(state, strict=True)
                got, want = model(io["input"]), io["output"]
        print(arch, float((got - want).abs().max()))


def main(argv):
    if len(argv) < 3 or argv[1] not in ("make", "check"):
        print(__doc__, file=sys.stderr)
        return 2
    archs = argv[3:] or ARCHS
    unknown = [a for a in archs if a not in ARCHS]
    if unknown:
        print(f"unknown architectures: {unknown}", file=sys.stderr)
        return 2
    torch.set_num_threads(2)
    (make if argv[1] == "make" else check)(argv[2], archs)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
