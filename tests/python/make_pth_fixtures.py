#!/usr/bin/env python3
"""Writes .pth fixtures for tests/core/test_pth.cpp with the real torch.save.

    make_pth_fixtures.py OUTDIR [MARKERDIR]
                                         write the fixtures (and what they hold)
    make_pth_fixtures.py --check FILE EXPECTED.json
                                         torch.load FILE (weights_only) and compare

For each benign fixture NAME.pth, NAME.json lists the tensors the C++ reader
must produce: {name: {"dtype": "F32", "shape": [...], "hex": "<C-order LE bytes>"}}.
The malicious fixtures would run `echo pwned > MARKERDIR/pwned_*` if unpickled by
Python's pickle (markers.json lists those paths); the test checks that tabby
refuses them and that no marker file appears. This script never loads them.
"""
import collections
import io
import json
import os
import pickle
import sys
import zipfile

import torch

DTYPES = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}


def tensor_bytes(t):
    flat = t.detach().contiguous().reshape(-1)
    if flat.dtype == torch.bool:
        flat = flat.to(torch.uint8)
    return flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""


def describe(sd):
    return {k: {"dtype": DTYPES[v.dtype], "shape": list(v.shape), "hex": tensor_bytes(v).hex()}
            for k, v in sd.items()}


def write_expected(path, sd):
    with open(path, "w") as f:
        json.dump(describe(sd), f, indent=1, sort_keys=True)


def every_dtype():
    g = torch.Generator().manual_seed(7)
    sd = collections.OrderedDict()
    sd["f32"] = torch.randn(2, 3, generator=g)
    sd["f16"] = torch.randn(4, generator=g).half()
    sd["bf16"] = torch.randn(3, 2, generator=g).bfloat16()
    sd["f64"] = torch.randn(2, generator=g).double()
    sd["i64_scalar"] = torch.tensor(123456789012, dtype=torch.int64)
    sd["i32"] = torch.tensor([-5, 7, 1 << 30], dtype=torch.int32)
    sd["i16"] = torch.tensor([-300, 300], dtype=torch.int16)
    sd["i8"] = torch.tensor([-128, 127, 0], dtype=torch.int8)
    sd["u8"] = torch.arange(5, dtype=torch.uint8)
    sd["bool"] = torch.tensor([True, False, True])
    sd["empty"] = torch.zeros(0, 3)
    return sd


def views():
    base = torch.arange(24, dtype=torch.float32)
    sd = collections.OrderedDict()
    sd["transposed"] = base[:12].reshape(3, 4).t()          # stride (1, 4), shares storage
    sd["offset_view"] = base[5:11].reshape(2, 3)             # storage offset 5
    sd["strided"] = base.reshape(4, 6)[:, ::2]               # stride (6, 2)
    sd["base"] = base
    sd["expanded"] = torch.arange(3.0).expand(2, 3)          # stride (0, 1)
    return sd


def module_state_dict():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(2, 2))
    return net.state_dict()  # has _metadata and an int64 num_batches_tracked


class OldStylePickler(pickle.Pickler):
    """Pickles the way PyTorch < 0.4 under Python 2 did: tensors through
    torch._utils._rebuild_tensor and OrderedDicts as lists of [key, value]."""

    def reducer_override(self, obj):
        if isinstance(obj, torch.Tensor):
            return (torch._utils._rebuild_tensor,
                    (obj.storage(), obj.storage_offset(), tuple(obj.size()), obj.stride()))
        if type(obj) is collections.OrderedDict:
            return (collections.OrderedDict, ([[k, v] for k, v in obj.items()],))
        return NotImplemented


class OldStyleModule:
    Pickler = OldStylePickler
    dump = staticmethod(pickle.dump)
    load = staticmethod(pickle.load)
    Unpickler = pickle.Unpickler


def rezip(src, dst, compression=zipfile.ZIP_STORED, force_zip64=False):
    """Copies a zip-format .pth entry by entry, optionally compressed or ZIP64."""
    old_limits = zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT
    if force_zip64:
        # Every size, offset and the entry count then go through ZIP64 records.
        zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = 1, 1
    try:
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression=compression) as zout:
            for name in zin.namelist():
                zout.writestr(name, zin.read(name))
    finally:
        zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = old_limits


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ("echo pwned > " + self.marker,))


def handcrafted_zip(path, pickle_bytes):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle_bytes)
        z.writestr("archive/version", "3\n")


def posix_system_pickle(marker):
    cmd = ("echo pwned > " + marker).encode()
    return (b"\x80\x02cposix\nsystem\nq\x00X" + len(cmd).to_bytes(4, "little") + cmd +
            b"q\x01\x85q\x02Rq\x03.")


def make(outdir, markerdir):
    os.makedirs(outdir, exist_ok=True)
    p = lambda name: os.path.join(outdir, name)
    marker = lambda name: os.path.join(markerdir, name)

    fixtures = {
        "every_dtype": every_dtype(),
        "views": views(),
        "module": module_state_dict(),
    }
    for name, sd in fixtures.items():
        torch.save(sd, p(name + ".pth"))
        write_expected(p(name + ".json"), sd)

    # The same dicts in other containers and encodings.
    sd = fixtures["every_dtype"]
    torch.save(sd, p("legacy.pth"), _use_new_zipfile_serialization=False)
    write_expected(p("legacy.json"), sd)
    torch.save(fixtures["views"], p("legacy_views.pth"), _use_new_zipfile_serialization=False)
    write_expected(p("legacy_views.json"), fixtures["views"])
    torch.save(sd, p("protocol4.pth"), pickle_protocol=4)
    write_expected(p("protocol4.json"), sd)
    rezip(p("every_dtype.pth"), p("deflated.pth"), compression=zipfile.ZIP_DEFLATED)
    write_expected(p("deflated.json"), sd)
    rezip(p("every_dtype.pth"), p("zip64.pth"), force_zip64=True)
    write_expected(p("zip64.json"), sd)

    module = fixtures["module"]
    torch.save({"epoch": 3, "state_dict": module, "optimizer": {"state": {}, "param_groups": [{"lr": 0.1}]}},
               p("nested_state_dict.pth"))
    write_expected(p("nested_state_dict.json"), module)
    torch.save({"model": module, "note": "checkpoint"}, p("nested_model.pth"))
    write_expected(p("nested_model.json"), module)

    params = collections.OrderedDict(weight=torch.nn.Parameter(torch.ones(2, 2)), bias=torch.zeros(2))
    torch.save(params, p("parameter.pth"))
    write_expected(p("parameter.json"), params)

    old = collections.OrderedDict(a=torch.arange(6.0).reshape(2, 3).t(), b=torch.tensor([1, 2], dtype=torch.int64))
    torch.save(old, p("old_style.pth"), pickle_module=OldStyleModule, _use_new_zipfile_serialization=False)
    write_expected(p("old_style.json"), old)

    torch.save({"not_a_tensor": 5, "w": torch.ones(1)}, p("non_tensor.pth"))

    # Malicious files: loading them with Python's pickle would run a shell command.
    torch.save({"w": torch.ones(2), "payload": Evil(marker("pwned_reduce"))}, p("malicious_reduce.pth"))
    torch.save({"w": torch.ones(2), "payload": Evil(marker("pwned_legacy"))}, p("malicious_legacy.pth"),
               _use_new_zipfile_serialization=False)
    handcrafted_zip(p("malicious_posix.pth"), posix_system_pickle(marker("pwned_posix")))
    # Where the payloads would write; the test checks these never appear.
    with open(p("markers.json"), "w") as f:
        json.dump([marker("pwned_reduce"), marker("pwned_legacy"), marker("pwned_posix")], f)

    # Sanity: every benign fixture loads in torch itself (except zip64.pth:
    # torch's own zip reader rejects ZIP64 records on small files). Fully
    # unpickled: these are the files just written from the objects above, and
    # the weights_only unpickler that torch >= 2.6 uses by default refuses the
    # FRAME opcodes of protocol4.pth ("Unsupported operand 149"). torch 1.13
    # takes the argument too (there it is the default).
    for name in list(fixtures) + ["legacy", "legacy_views", "protocol4", "deflated", "parameter",
                                  "old_style", "nested_state_dict", "nested_model"]:
        torch.load(p(name + ".pth"), weights_only=False)


def check(path, expected_path):
    with open(expected_path) as f:
        expected = json.load(f)
    loaded = torch.load(path, weights_only=True)
    if not isinstance(loaded, dict):
        print("not a dict: %r" % type(loaded))
        return 1
    got = describe(loaded)
    if got != expected:
        for k in sorted(set(got) | set(expected)):
            if got.get(k) != expected.get(k):
                print("differs: %s: got %r expected %r" % (k, got.get(k), expected.get(k)))
        return 1
    print("ok: %d tensors" % len(got))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--check":
        sys.exit(check(sys.argv[2], sys.argv[3]))
    if len(sys.argv) not in (2, 3):
        print(__doc__)
        sys.exit(2)
    make(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else sys.argv[1])
