#!/usr/bin/python3
"""Reference outputs of torchvision's augmentation ops, for tests/torch/test_augment_torchvision.cpp.

  make_augment_fixtures.py OUTFILE
      Writes OUTFILE (safetensors): "input", a (4,3,13,17) uint8 batch, and for
      each op the torchvision result on it with the fixed per-image parameters
      below (floats in [0, 1]; ops that need uint8 ran on "input" and were
      divided by 255). The C++ test uses the same parameters.

Exit status 3 when torch or torchvision cannot be imported (the caller skips).
"""
import os
import sys

try:
    import torch
    import torchvision.transforms.functional as F
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.autoaugment import RandAugment, TrivialAugmentWide, _apply_op
except Exception as error:  # pragma: no cover - depends on the machine
    print(f"cannot import torchvision: {error}", file=sys.stderr)
    sys.exit(3)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_zoo_fixtures import write_safetensors  # noqa: E402

# Per-image parameters (4 images); keep in step with the C++ test.
FACTORS = {
    "brightness": [0.5, 1.0, 1.7, 0.0],
    "contrast": [0.3, 1.0, 1.8, 0.0],
    "saturation": [0.2, 1.0, 1.9, 0.0],
    "hue": [-0.4, 0.25, 0.1, 0.5],
    "sharpness": [0.1, 1.0, 1.99, 0.0],
}
JITTER_ORDER = [[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]]
JITTER = {"b": [1.3, 0.7, 1.1, 0.9], "c": [0.6, 1.4, 1.2, 0.8], "s": [1.5, 0.5, 0.0, 1.2], "h": [0.1, -0.2, 0.3, -0.45]}
CROP_BOXES = [[0, 0, 13, 17], [2, 3, 5, 7], [1, 4, 11, 9], [6, 0, 7, 17]]  # top, left, height, width
OP_MAGNITUDES = {
    "ShearX": [0.3, -0.5, 0.99, 0.0],
    "ShearY": [-0.2, 0.6, 0.0, 0.99],
    "TranslateX": [5.0, -7.0, 32.0, 0.5],
    "TranslateY": [-3.0, 9.0, 0.0, 31.9],
    "Rotate": [30.0, -45.0, 135.0, 0.0],
    "Brightness": [0.5, -0.5, 0.99, -0.99],
    "Color": [0.5, -0.5, 0.99, -0.99],
    "Contrast": [0.5, -0.5, 0.99, -0.99],
    "Sharpness": [0.5, -0.5, 0.99, -0.99],
    "Posterize": [1, 2, 4, 8],
    "Solarize": [0.0, 128.0, 200.0, 255.0],
    "AutoContrast": [0, 0, 0, 0],
    "Equalize": [0, 0, 0, 0],
}
UINT8_OPS = {"Posterize", "Equalize"}


def make_input():
    g = torch.Generator().manual_seed(24)
    x = torch.randint(0, 256, (4, 3, 13, 17), generator=g, dtype=torch.uint8)
    # Grey pixels (no hue), a flat channel (autocontrast/equalize leave it)
    # and a dark, low-contrast image (equalize spreads it).
    x[0, :, 2:5, 3:9] = x[0, 0, 2:5, 3:9]
    x[2, 1] = 77
    x[3] = (x[3] // 8 + 20).to(torch.uint8)
    return x


def per_image(fn, x, values):
    return torch.stack([fn(x[i], values[i]) for i in range(x.shape[0])])


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    x8 = make_input()
    x = x8.float() / 255
    out = {"input": x8}
    out["brightness"] = per_image(F.adjust_brightness, x, FACTORS["brightness"])
    out["contrast"] = per_image(F.adjust_contrast, x, FACTORS["contrast"])
    out["saturation"] = per_image(F.adjust_saturation, x, FACTORS["saturation"])
    out["hue"] = per_image(F.adjust_hue, x, FACTORS["hue"])
    out["sharpness"] = per_image(F.adjust_sharpness, x, FACTORS["sharpness"])

    jittered = []
    for i in range(4):
        img = x[i]
        for k in JITTER_ORDER[i]:
            if k == 0:
                img = F.adjust_brightness(img, JITTER["b"][i])
            elif k == 1:
                img = F.adjust_contrast(img, JITTER["c"][i])
            elif k == 2:
                img = F.adjust_saturation(img, JITTER["s"][i])
            else:
                img = F.adjust_hue(img, JITTER["h"][i])
        jittered.append(img)
    out["jitter"] = torch.stack(jittered)

    out["resized_crop"] = torch.stack([
        F.resized_crop(x[i], *CROP_BOXES[i], [13, 17], InterpolationMode.BILINEAR, antialias=False) for i in range(4)])

    for name, mags in OP_MAGNITUDES.items():
        modes = ["nearest", "bilinear"] if name in ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate") else [""]
        for mode in modes:
            interpolation = InterpolationMode.BILINEAR if mode == "bilinear" else InterpolationMode.NEAREST
            results = []
            for i in range(4):
                if name in UINT8_OPS:
                    results.append(_apply_op(x8[i], name, mags[i], interpolation, None).float() / 255)
                elif name == "Solarize":  # torchvision's threshold is in the image's own units
                    results.append(_apply_op(x[i], name, mags[i] / 255, interpolation, None))
                else:
                    results.append(_apply_op(x[i], name, mags[i], interpolation, None))
            out["op_" + name + ("_" + mode if mode else "")] = torch.stack(results)

    # The magnitude bins, as the policies' forward() reads them.
    wide = TrivialAugmentWide()._augmentation_space(31)
    rand = RandAugment()._augmentation_space(31, (13, 17))
    for key, space in (("wide", wide), ("rand", rand)):
        rows = [m.float().expand(31) if m.ndim == 0 else m.float() for m, _ in space.values()]
        out["magnitudes_" + key] = torch.stack(rows).double()
        out["signed_" + key] = torch.tensor([s for _, s in space.values()], dtype=torch.uint8)
    write_safetensors(argv[1], out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
