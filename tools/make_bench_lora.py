#!/usr/bin/env python3
"""make_bench_lora - a random kohya-layout LoRA for an SD1.x or SDXL checkpoint, for benchmarks.

Every attention projection (attn1/attn2 to_q, to_k, to_v, to_out.0) and both
feed-forward layers (ff.net.0.proj, ff.net.2) of every UNet transformer block
get F16 factors of the given rank and an alpha, named as kohya writes them
(SD1: lora_unet_down_blocks_{b}_attentions_{i}_..., the inverse of A1111's mapping;
SDXL: kohya's LDM names, lora_unet_input_blocks_4_1_transformer_blocks_0_...).
Shapes come from the checkpoint's header; no tensor data is read.

usage: make_bench_lora.py CHECKPOINT OUT.safetensors [--rank 32] [--seed 1]
"""
import argparse
import json
import random
import re
import struct

LAYERS = ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0",
          "attn2.to_q", "attn2.to_k", "attn2.to_v", "attn2.to_out.0",
          "ff.net.0.proj", "ff.net.2")


def kohya_block(ldm):
    """input_blocks.{1+3b+i} -> down_blocks_b_attentions_i, and so on (SD1 numbering)."""
    kind, n = ldm.split(".")
    n = int(n)
    if kind == "input_blocks":
        return f"down_blocks_{(n - 1) // 3}_attentions_{(n - 1) % 3}"
    if kind == "output_blocks":
        return f"up_blocks_{n // 3}_attentions_{n % 3}"
    return "mid_block_attentions_0"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("out")
    ap.add_argument("--rank", type=int, default=32)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    with open(a.checkpoint, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    pat = re.compile(r"model\.diffusion_model\.((?:input_blocks|output_blocks)\.\d+|middle_block)"
                     r"\.1\.transformer_blocks\.(\d+)\.(.+)\.weight$")
    sdxl = any(k.startswith("conditioner.embedders.") for k in header)
    rng = random.Random(a.seed)
    tensors = []  # (name, shape, values)
    for key in sorted(header):
        m = pat.match(key)
        if not m or m.group(3) not in LAYERS:
            continue
        block = m.group(1) if m.group(1) != "middle_block" else "middle_block.1"
        where = (m.group(1) + "_1").replace(".", "_") if sdxl else kohya_block(block)
        module = "lora_unet_{}_transformer_blocks_{}_{}".format(
            where, m.group(2), m.group(3).replace(".", "_"))
        out, inp = header[key]["shape"][:2]
        r = a.rank
        tensors.append((module + ".alpha", [], [float(r) / 2]))
        tensors.append((module + ".lora_down.weight", [r, inp], None))
        tensors.append((module + ".lora_up.weight", [out, r], None))
    meta, off, blobs = {"__metadata__": {"note": "random benchmark LoRA"}}, 0, []
    for name, shape, vals in tensors:
        count = 1
        for d in shape:
            count *= d
        if vals is None:  # small values: a delta of a few percent of the weights
            vals = [rng.gauss(0, 0.02) for _ in range(count)]
        blob = struct.pack("<%de" % count, *vals)
        meta[name] = {"dtype": "F16", "shape": shape, "data_offsets": [off, off + len(blob)]}
        off += len(blob)
        blobs.append(blob)
    head = json.dumps(meta, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    with open(a.out, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for b in blobs:
            f.write(b)
    print(f"{a.out}: {len(tensors) // 3} modules, rank {a.rank}, {off / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
