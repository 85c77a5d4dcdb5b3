#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz/corpus/<target>/ from what the suite
already has: the HTTP cases (tests/http/*.cases), test_hostile's raw requests,
test_safetensors' hostile headers, the fixtures' safetensors headers, the A1111
prompts. Small files only. JPEG and WebP seeds (corpus/image/*.jpg, *.webp)
were made once with libjpeg and libwebp and are kept as they are.

Run from the repository root: python3 tests/fuzz/make_corpus.py"""
import hashlib, json, os, re, struct, zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
MAX_SEED = 64 << 10


def put(target, data, name=None):
    if isinstance(data, str):
        data = data.encode()
    if len(data) > MAX_SEED:
        return
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    name = name or hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- HTTP cases -> raw requests, and their bodies -> job_json ----

def parse_cases(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    cases, i = [], 0
    while i < len(lines):
        if not lines[i].startswith("=== "):
            i += 1
            continue
        i += 1
        request_line = lines[i]
        i += 1
        headers = []
        while i < len(lines) and lines[i] != "" and not lines[i].startswith("---"):
            headers.append(lines[i])
            i += 1
        body = []
        if i < len(lines) and lines[i] == "":
            i += 1
            while i < len(lines) and not lines[i].startswith("---"):
                body.append(lines[i])
                i += 1
        cases.append((request_line, headers, body))
    return cases


def body_bytes(body):
    if not body:
        return b""
    crlf = body[0] == "@crlf"
    if crlf:
        body = body[1:]
    out = []
    for line in body:
        m = re.match(r"@repeat (\d+) (.)$", line)
        if m:
            line = m.group(2) * min(int(m.group(1)), 2000)  # seeds stay small
        out.append(line)
    return ("\r\n" if crlf else "\n").join(out).encode()


def http_and_json_seeds():
    d = os.path.join(ROOT, "tests", "http")
    for f in sorted(os.listdir(d)):
        if not f.endswith(".cases"):
            continue
        for request_line, headers, body in parse_cases(os.path.join(d, f)):
            method, _, target = request_line.partition(" ")
            data = body_bytes(body)
            hs = [h for h in headers if not h.lower().startswith("content-length")]
            if not any(h.lower().startswith("host:") for h in hs):
                hs.insert(0, "Host: 127.0.0.1")
            if data and not any(h.lower().startswith("content-type:") for h in hs):
                hs.append("Content-Type: application/json")
            if data or method in ("POST", "PUT"):
                hs.append("Content-Length: %d" % len(data))
            raw = ("%s %s HTTP/1.1\r\n" % (method, target) + "".join(h + "\r\n" for h in hs)
                   + "\r\n").encode() + data
            put("http", raw)
            path = target.split("?")[0]
            ctype = next((h.split(":", 1)[1].strip() for h in hs
                          if h.lower().startswith("content-type:")), "")
            if method != "POST" or not data:
                continue
            if path == "/v1/jobs":
                put("job_json", b"\x00" + data)
            elif path == "/sdapi/v1/txt2img":
                put("job_json", b"\x01" + data)
            elif path == "/sdapi/v1/img2img":
                put("job_json", b"\x02" + data)
            elif path == "/v1/images/generations":
                put("job_json", b"\x03" + data)
            elif path in ("/v1/images/edits", "/v1/images/variations") and "multipart" in ctype:
                put("job_json", b"\x04" + ctype.encode() + b"\n" + data)
    # test_hostile's raw requests (headers only: their bodies are the size tests')
    for raw in [
        "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 25165000\r\n"
        "Expect: 100-continue\r\n\r\n",
        "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer alice-key-0123456789"
        "\r\nContent-Length: 10000000000\r\nExpect: 100-continue\r\n\r\n",
        "DELETE /v1/jobs/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\n",
        "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n{",
        "GET /v1/jobs/0123456789abcdef/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "GET /v1/jobs/0123456789abcdef?wait=60 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\n{\"mod\r\n0\r\n\r\n",
    ]:
        put("http", raw)


# ---- safetensors ----

def st_file(header, data_bytes):
    h = header.encode() if isinstance(header, str) else header
    return struct.pack("<Q", len(h)) + h + b"\0" * data_bytes


def safetensors_seeds():
    F = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}'
    for header, data in [
        (F + "}", 8), (F + "}", 4),
        ('{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', 8),
        ('{"a":{"dtype":"Q9","shape":[2],"data_offsets":[0,8]}}', 8),
        ('{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', 8),
        ('{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}', 8),
        (F + ',"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', 12),
        ('{"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],'
         '"data_offsets":[0,8]}}', 8),
        ('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}}', 8),
        ('{"a":[1,2]}', 8), (F, 8), ("[1,2,3]", 0), (F + "," + F[1:] + "}", 8),
        ('{"__metadata__":{"k":5}}', 0),
        ('{"a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}}', 4),
        ('{"__metadata__":{"format":"pt","modelspec.architecture":"stable-diffusion-v1"},'
         '"h":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]},'
         '"b":{"dtype":"BF16","shape":[3],"data_offsets":[8,14]},'
         '"d":{"dtype":"F64","shape":[1],"data_offsets":[14,22]},'
         '"i":{"dtype":"I64","shape":[1],"data_offsets":[22,30]},'
         '"e":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[30,32]},'
         '"z":{"dtype":"F32","shape":[0],"data_offsets":[32,32]}}', 32),
        ("{}", 0),
    ]:
        put("safetensors", st_file(header, data))
    # the fixtures' own tables, shrunk: their first tensors with small shapes
    for fx in ["tiny-sd15.safetensors", "lora/lora-golden.safetensors"]:
        path = os.path.join(ROOT, "tests", "fixtures", fx)
        if not os.path.exists(path):
            continue
        with open(path, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(n))
        out, off = {}, 0
        if "__metadata__" in header:
            out["__metadata__"] = header.pop("__metadata__")
        width = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8}
        for k in sorted(header)[:40]:
            v = header[k]
            shape = [min(s, 3) for s in v["shape"]]
            nb = width.get(v["dtype"], 4)
            for s in shape:
                nb *= s
            out[k] = {"dtype": v["dtype"], "shape": shape, "data_offsets": [off, off + nb]}
            off += nb
        put("safetensors", st_file(json.dumps(out, separators=(",", ":")), off))


# ---- LoRA ----

def lora_file(mods, fmt="kohya", rank=2, shape_in=4, shape_out=4, alpha=True, dtype="F16"):
    out, off, width = {}, 0, {"F16": 2, "F32": 4, "BF16": 2}[dtype]
    for m in mods:
        if fmt == "kohya":
            names = [(m + ".lora_down.weight", [rank, shape_in]),
                     (m + ".lora_up.weight", [shape_out, rank])]
            if alpha:
                names.append((m + ".alpha", []))
        else:
            names = [(m + ".lora_A.weight", [rank, shape_in]),
                     (m + ".lora_B.weight", [shape_out, rank])]
        for name, shape in names:
            nb = width
            for s in shape:
                nb *= s
            out[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + nb]}
            off += nb
    return st_file(json.dumps(out, separators=(",", ":")), off)


def lora_seeds():
    kohya = [
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q",
        "lora_unet_mid_block_attentions_0_proj_in",
        "lora_unet_up_blocks_1_resnets_0_conv1",
        "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k",
        "lora_te_text_model_encoder_layers_0_self_attn_q_proj",
        "lora_te1_text_model_encoder_layers_0_mlp_fc1",
        "lora_te2_text_model_encoder_layers_1_self_attn_out_proj",
        "lora_te_text_model_encoder_layers_0_self_attn_in_proj",
        "lora_unet_down_blocks_1_downsamplers_0_conv",
        "lora_unet_time_embedding_linear_1",
    ]
    peft = [
        "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q",
        "unet.up_blocks.2.attentions.1.proj_out",
        "text_encoder.text_model.encoder.layers.0.self_attn.k_proj",
        "text_encoder_2.text_model.encoder.layers.0.mlp.fc2",
    ]
    for name in kohya + peft:
        put("lora", b"\x01" + name.encode())
    put("lora", b"\x00" + lora_file(kohya[:3]))
    put("lora", b"\x00" + lora_file(kohya, alpha=False, dtype="F32"))
    put("lora", b"\x00" + lora_file(peft, fmt="peft"))
    put("lora", b"\x00" + lora_file(kohya[4:7], rank=1, dtype="BF16"))


# ---- layout ----

def layout_seeds():
    for arch in range(3):
        for dtype in range(3):
            put("layout", bytes([arch, 16, 76, dtype]))
        # a few edits: drop, reshape, rank, swap, rename
        put("layout", bytes([arch, 16, 76, 0, 0, 5, 0, 0, 1, 7, 0, 17, 2, 9, 0, 3, 3, 11, 0, 40,
                             4, 12, 0, 9]) + b"lora_unet")
        put("layout", bytes([arch, 16, 76, 0, 4, 0, 0, 21]) + b"encoder.conv_in.weight")


# ---- image ----

def png_chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))


def png(w, h, color_type=2, bit_depth=8, texts=(), interlace=0):
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    raw = b"".join(b"\0" + bytes((x * 31 + y * 7) & 0xff for x in range(w * channels))
                   for y in range(h))
    out = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth,
                                                              color_type, 0, 0, interlace))
    if color_type == 3:
        out += png_chunk(b"PLTE", bytes(range(48)))
    for kind, key, text in texts:
        if kind == b"tEXt":
            out += png_chunk(kind, key + b"\0" + text)
        else:
            out += png_chunk(kind, key + b"\0\0\0\0\0" + text)
    out += png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b"")
    return out


def image_seeds():
    info = (b"a cat, (masterpiece:1.2), <lora:x:0.5>\nNegative prompt: ugly, blurry\n"
            b"Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1, "
            b"Size: 512x768, Model hash: 01385cab74, Model: tiny-sd15, "
            b"Lora hashes: \"x: abc, y: def\", Version: gesso")
    put("image", png(4, 4, texts=[(b"tEXt", b"parameters", info)]))
    put("image", png(3, 5, color_type=6, texts=[(b"iTXt", b"parameters", info)]))
    put("image", png(2, 2, color_type=0))
    put("image", png(5, 3, color_type=3))
    put("image", png(4, 4, color_type=4, bit_depth=8, interlace=1))
    put("image", png(2, 2, color_type=2, bit_depth=16))
    put("image", info)
    put("image", b"only a prompt\nSteps: 1, Size: 64x64x, Seed: \"quoted \\\"x\\\", y\"")
    for f in os.listdir(os.path.join(ROOT, "tests", "fixtures")):
        p = os.path.join(ROOT, "tests", "fixtures", f)
        if f.endswith(".png") and os.path.getsize(p) < 16 << 10:
            put("image", open(p, "rb").read())
            break


# ---- prompt ----

def prompt_seeds():
    with open(os.path.join(ROOT, "tests", "fixtures", "a1111-prompts.json")) as f:
        for item in json.load(f):
            put("prompt", item["prompt"])
    for p in ["", "BREAK", "a BREAK b", "(a:1.2) [b] {c} ((d)) \\(e\\)", "<lora:name:0.5:0.7> x",
              "<lora:>", "caf\u00e9 \u65e5\u672c\u8a9e \U0001f600 &amp; &#x41; &lt;",
              "a\u00a0b\u200bc", "\xff\xfe invalid", "AND", "a [b:c:0.5] [d|e]",
              "(" * 40 + "x" + ")" * 40, "word, " * 80, "<|startoftext|>x<|endoftext|>"]:
        put("prompt", p.encode("utf-8", "surrogateescape") if isinstance(p, str) else p)
    put("prompt", b"\xc3\x28 \xe2\x82 \xf0\x9f\x98 lone continuation \x80\xbf")


# ---- job_json (beyond the HTTP cases' bodies) ----

def job_json_seeds():
    native = {"model": "tiny", "prompt": "a cat", "negative_prompt": "dog", "steps": 4,
              "width": 64, "height": 64, "cfg_scale": 7, "sampler": "euler_a",
              "scheduler": "karras", "seed": 18446744073709551615, "batch_size": 2,
              "loras": [{"name": "x", "weight": 0.5}], "clip_skip": 2}
    put("job_json", b"\x00" + json.dumps(native).encode())
    a1111 = {"prompt": "a cat", "steps": 4, "width": 64, "height": 64, "sampler_name": "Euler a",
             "scheduler": "Karras", "seed": -1, "batch_size": 2, "n_iter": 2,
             "override_settings": {"sd_model_checkpoint": "tiny", "CLIP_stop_at_last_layers": 2}}
    put("job_json", b"\x01" + json.dumps(a1111).encode())
    put("job_json", b"\x02" + json.dumps(dict(a1111, init_images=["iVBORw0KGgo="],
                                             denoising_strength=0.5)).encode())
    put("job_json", b"\x03" + json.dumps({"prompt": "a cat", "model": "tiny", "n": 1,
                                          "size": "64x64", "seed": 7}).encode())


if __name__ == "__main__":
    http_and_json_seeds()
    safetensors_seeds()
    lora_seeds()
    layout_seeds()
    image_seeds()
    prompt_seeds()
    job_json_seeds()
    for t in sorted(os.listdir(CORPUS)):
        files = os.listdir(os.path.join(CORPUS, t))
        size = sum(os.path.getsize(os.path.join(CORPUS, t, f)) for f in files)
        print("%-12s %4d seeds, %7d bytes" % (t, len(files), size))
