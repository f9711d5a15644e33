#!/usr/bin/env python3
"""An independent safetensors reader, for cross-checking rnnlm's TypeScript reader and writer.

Written from the format description alone (standard library only):
  bytes 0..8    little-endian unsigned 64-bit N, the header size
  bytes 8..8+N  UTF-8 JSON object (may end in padding spaces):
                  name -> {"dtype": str, "shape": [int, ...], "data_offsets": [begin, end]}
                  optional "__metadata__": {str: str}
  bytes 8+N..   the data region; offsets are relative to its start, the tensors must cover it
                exactly (no holes, no overlaps), and end - begin == prod(shape) * itemsize.

Usage: python3 independent_safetensors.py FILE
Prints {"metadata": {...}, "tensors": {name: {"dtype", "shape", "sum", "first"}}} as JSON.
Exits with status 1 and a message on stderr when the file breaks the format.
"""
import json
import math
import struct
import sys

# dtype -> (struct format character, bytes per element); BF16 is decoded by hand.
FORMATS = {
    "BOOL": ("?", 1),
    "U8": ("B", 1),
    "I8": ("b", 1),
    "U16": ("H", 2),
    "I16": ("h", 2),
    "F16": ("e", 2),
    "BF16": (None, 2),
    "U32": ("I", 4),
    "I32": ("i", 4),
    "F32": ("f", 4),
    "U64": ("Q", 8),
    "I64": ("q", 8),
    "F64": ("d", 8),
}


class FormatError(Exception):
    pass


def _no_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise FormatError("duplicate key %r in the header" % key)
        seen[key] = value
    return seen


def _reject_constant(name):
    raise FormatError("header holds the non-JSON constant %s" % name)


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def load_header(blob):
    if len(blob) < 8:
        raise FormatError("file has %d bytes, fewer than the 8 of the size prefix" % len(blob))
    (size,) = struct.unpack("<Q", blob[:8])
    if size > len(blob) - 8:
        raise FormatError("header size %d exceeds the %d bytes after the prefix" % (size, len(blob) - 8))
    raw = blob[8:8 + size]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError("header is not UTF-8: %s" % exc)
    try:
        header = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except ValueError as exc:
        raise FormatError("header is not JSON: %s" % exc)
    if not isinstance(header, dict):
        raise FormatError("header is a %s, not a JSON object" % type(header).__name__)
    return header, 8 + size


def check_layout(header, region_size):
    metadata = header.get("__metadata__", {})
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise FormatError("__metadata__ is not an object")
    for key, value in metadata.items():
        if not isinstance(value, str):
            raise FormatError("__metadata__[%r] is not a string" % key)

    spans = []
    described = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict):
            raise FormatError("%s: entry is not an object" % name)
        if set(info.keys()) != {"dtype", "shape", "data_offsets"}:
            raise FormatError("%s: entry keys are %s" % (name, sorted(info.keys())))
        dtype = info["dtype"]
        if dtype not in FORMATS:
            raise FormatError("%s: dtype %r is not known" % (name, dtype))
        shape = info["shape"]
        if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
            raise FormatError("%s: bad shape %r" % (name, shape))
        offsets = info["data_offsets"]
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int(o) and o >= 0 for o in offsets):
            raise FormatError("%s: bad data_offsets %r" % (name, offsets))
        lo, hi = offsets
        if lo > hi or hi > region_size:
            raise FormatError("%s: data_offsets %r outside 0..%d" % (name, offsets, region_size))
        count = math.prod(shape)  # exact: Python integers do not overflow
        if count * FORMATS[dtype][1] != hi - lo:
            raise FormatError("%s: %d elements of %s do not fill %d bytes" % (name, count, dtype, hi - lo))
        spans.append((lo, hi, name))
        described[name] = (dtype, shape, lo, hi, count)

    position = 0
    for lo, hi, name in sorted(spans):
        if lo != position:
            kind = "overlaps the previous tensor" if lo < position else "leaves a hole"
            raise FormatError("%s: starts at %d, expected %d (%s)" % (name, lo, position, kind))
        position = hi
    if position != region_size:
        raise FormatError("tensors cover %d of the %d data bytes" % (position, region_size))
    return metadata, described


def decode(dtype, chunk, count):
    fmt, width = FORMATS[dtype]
    if count == 0:
        return []
    if fmt is not None:
        return list(struct.unpack("<%d%s" % (count, fmt), chunk))
    # bfloat16: the upper half of an IEEE float32
    halves = struct.unpack("<%dH" % count, chunk)
    return [struct.unpack("<f", struct.pack("<I", h << 16))[0] for h in halves]


def summarize(path):
    with open(path, "rb") as handle:
        blob = handle.read()
    header, start = load_header(blob)
    metadata, described = check_layout(header, len(blob) - start)
    out = {}
    for name, (dtype, shape, lo, hi, count) in described.items():
        values = decode(dtype, blob[start + lo:start + hi], count)
        total = math.fsum(float(v) for v in values)
        first = values[0] if values else None
        if isinstance(first, bool):
            first = int(first)
        if isinstance(first, float) and not math.isfinite(first):
            first = None
        out[name] = {
            "dtype": dtype,
            "shape": shape,
            "sum": total if math.isfinite(total) else None,
            "first": first,
        }
    return {"metadata": metadata, "tensors": out}


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: %s FILE\n" % argv[0])
        return 2
    try:
        result = summarize(argv[1])
    except FormatError as exc:
        sys.stderr.write("invalid safetensors file %s: %s\n" % (argv[1], exc))
        return 1
    json.dump(result, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
