#!/usr/bin/python3
"""Reference data for gesso's image safety check (tests/fixtures/clip-vision/).

Writes, into OUT:
  tiny-clip.safetensors  a narrow random CLIP in Hugging Face transformers' CLIPModel layout
  tiny-clip-openclip.safetensors  the same weights in open_clip's names
  golden.safetensors     float64 image/text features by OpenAI CLIP's own model.py
  decisions.json         horde-safety NSFWChecker's lists and its decisions on crafted scores

Usage: /usr/bin/python3 make_clip_vision.py SRC OUT
SRC holds clip/ (openai/CLIP's model.py, simple_tokenizer.py, the BPE vocabulary and an empty
__init__.py) and horde_safety/ (horde-safety's nsfw_checker_class.py and utils.py). The modules
horde-safety imports but the decision never runs (the interrogator, DeepDanbooru, ftfy) are
stubbed here: the interrogator returns the crafted similarities of the case being checked.
"""
import json
import math
import random
import struct
import sys
import types

import numpy as np
import torch

SRC, OUT = sys.argv[1], sys.argv[2]
sys.path.insert(0, SRC)

# ---- stubs for modules the decision does not need ----
ftfy = types.ModuleType("ftfy")
ftfy.fix_text = lambda s: s  # concept texts are plain; gesso's tokenizer has its own ftfy tests
sys.modules["ftfy"] = ftfy
pkg = types.ModuleType("horde_safety")
pkg.__path__ = [SRC + "/horde_safety"]
sys.modules["horde_safety"] = pkg
ddm = types.ModuleType("horde_safety.deep_danbooru_model")
ddm.DeepDanbooruModel = object
sys.modules["horde_safety.deep_danbooru_model"] = ddm
itg = types.ModuleType("horde_safety.interrogate")
itg.Interrogator = object
sys.modules["horde_safety.interrogate"] = itg

import clip.model as cm  # noqa: E402
from clip.simple_tokenizer import SimpleTokenizer  # noqa: E402
from horde_safety.nsfw_checker_class import NSFWChecker  # noqa: E402

# OpenAI's LayerNorm computes in float32 whatever the input; the golden is float64 throughout.
cm.LayerNorm.forward = torch.nn.LayerNorm.forward


# ---- safetensors ----
def st_write(path, tensors):
    names = {np.float16: "F16", np.float32: "F32", np.float64: "F64", np.int64: "I64",
             np.int32: "I32", np.uint8: "U8"}
    header, blobs, off = {}, [], 0
    for k, a in tensors.items():
        a = np.ascontiguousarray(a)
        b = a.tobytes()
        header[k] = {"dtype": names[a.dtype.type], "shape": list(a.shape),
                     "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def st_read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    types_ = {"F16": np.float16, "F32": np.float32, "F64": np.float64, "I64": np.int64}
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        out[k] = np.frombuffer(data[a:b], dtype=types_[v["dtype"]]).reshape(v["shape"])
    return out


# ---- a narrow random CLIP in the HF layout ----
VW, VL, PATCH, RES = 64, 2, 14, 224  # vision width (1 head of 64), layers
TW, TL, TH = 8, 2, 1                 # text width, layers, heads (max(1, width // 64))
PROJ, VOCAB, CTX = 32, 49408, 77
rng = np.random.default_rng(20261206)


def rnd(*shape, std=0.05):
    return (rng.standard_normal(shape) * std).astype(np.float32)


def ln(prefix, w, t):
    t[prefix + ".weight"] = (1 + rnd(w, std=0.1)).astype(np.float32)
    t[prefix + ".bias"] = rnd(w, std=0.05)


def lin(prefix, o, i, t, std):
    t[prefix + ".weight"] = rnd(o, i, std=std).astype(np.float16)
    t[prefix + ".bias"] = rnd(o, std=0.02)


def layers(prefix, n, w, t):
    for i in range(n):
        p = f"{prefix}.encoder.layers.{i}."
        ln(p + "layer_norm1", w, t)
        ln(p + "layer_norm2", w, t)
        for q in ("q", "k", "v", "out"):
            lin(p + f"self_attn.{q}_proj", w, w, t, 1 / math.sqrt(w))
        lin(p + "mlp.fc1", 4 * w, w, t, 1 / math.sqrt(w))
        lin(p + "mlp.fc2", w, 4 * w, t, 1 / math.sqrt(4 * w))


hf = {}
hf["vision_model.embeddings.class_embedding"] = rnd(VW, std=0.5)
hf["vision_model.embeddings.patch_embedding.weight"] = rnd(VW, 3, PATCH, PATCH, std=0.05)
hf["vision_model.embeddings.position_embedding.weight"] = rnd((RES // PATCH) ** 2 + 1, VW, std=0.2)
hf["vision_model.embeddings.position_ids"] = np.arange((RES // PATCH) ** 2 + 1, dtype=np.int64)[None]
ln("vision_model.pre_layrnorm", VW, hf)  # sic: transformers' name
layers("vision_model", VL, VW, hf)
ln("vision_model.post_layernorm", VW, hf)
hf["visual_projection.weight"] = rnd(PROJ, VW, std=1 / math.sqrt(VW))
hf["text_model.embeddings.token_embedding.weight"] = rnd(VOCAB, TW, std=0.5).astype(np.float16)
hf["text_model.embeddings.position_embedding.weight"] = rnd(CTX, TW, std=0.2)
hf["text_model.embeddings.position_ids"] = np.arange(CTX, dtype=np.int64)[None]
layers("text_model", TL, TW, hf)
ln("text_model.final_layer_norm", TW, hf)
hf["text_projection.weight"] = rnd(PROJ, TW, std=1 / math.sqrt(TW))
hf["logit_scale"] = np.array(math.log(100.0), dtype=np.float32)
st_write(OUT + "/tiny-clip.safetensors", hf)

# ---- OpenAI CLIP from the file as written (read back through the reader) ----
f = {k: torch.from_numpy(v.astype(np.float64)) for k, v in st_read(OUT + "/tiny-clip.safetensors").items()
     if v.dtype != np.int64}


def to_openai(src, dst, n):
    for i in range(n):
        s, d = f"{src}.encoder.layers.{i}.", f"{dst}.resblocks.{i}."
        sd[d + "attn.in_proj_weight"] = torch.cat([f[s + f"self_attn.{q}_proj.weight"] for q in "qkv"])
        sd[d + "attn.in_proj_bias"] = torch.cat([f[s + f"self_attn.{q}_proj.bias"] for q in "qkv"])
        for a, b in (("self_attn.out_proj", "attn.out_proj"), ("layer_norm1", "ln_1"),
                     ("layer_norm2", "ln_2"), ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj")):
            sd[d + b + ".weight"] = f[s + a + ".weight"]
            sd[d + b + ".bias"] = f[s + a + ".bias"]


sd = {}
sd["visual.class_embedding"] = f["vision_model.embeddings.class_embedding"]
sd["visual.conv1.weight"] = f["vision_model.embeddings.patch_embedding.weight"]
sd["visual.positional_embedding"] = f["vision_model.embeddings.position_embedding.weight"]
for a, b in (("pre_layrnorm", "ln_pre"), ("post_layernorm", "ln_post")):
    sd[f"visual.{b}.weight"] = f[f"vision_model.{a}.weight"]
    sd[f"visual.{b}.bias"] = f[f"vision_model.{a}.bias"]
to_openai("vision_model", "visual.transformer", VL)
sd["visual.proj"] = f["visual_projection.weight"].T.contiguous()
sd["token_embedding.weight"] = f["text_model.embeddings.token_embedding.weight"]
sd["positional_embedding"] = f["text_model.embeddings.position_embedding.weight"]
to_openai("text_model", "transformer", TL)
sd["ln_final.weight"] = f["text_model.final_layer_norm.weight"]
sd["ln_final.bias"] = f["text_model.final_layer_norm.bias"]
sd["text_projection"] = f["text_projection.weight"].T.contiguous()
sd["logit_scale"] = f["logit_scale"]

# the same weights in open_clip's names (OpenAI's own, which open_clip keeps), each tensor in
# the dtype the Hugging Face file holds it in, so both files hold exactly the same numbers
oc = {}
for k, v in sd.items():
    a = v.numpy()
    exact16 = np.array_equal(a.astype(np.float16).astype(np.float64), a)  # it came from an F16
    oc[k] = a.astype(np.float16 if exact16 and a.ndim > 1 else np.float32)
st_write(OUT + "/tiny-clip-openclip.safetensors", oc)

model = cm.CLIP(PROJ, RES, VL, VW, PATCH, CTX, VOCAB, TW, TH, TL).double()
model.load_state_dict(sd, strict=True)
model.eval()


# ---- images: open_clip's ViT-L-14/openai transform, as torchvision runs it on a PIL image ----
def make_image(w, h, seed):
    r = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([127 + 120 * np.sin(x / (7 + 3 * c) + y / (11 + 5 * c) + c) for c in range(3)], -1)
    img += r.integers(-20, 21, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def preprocess(rgb):
    from PIL import Image
    im = Image.fromarray(rgb, "RGB")
    w, h = im.size
    short, long_ = (w, h) if w <= h else (h, w)
    new_short, new_long = RES, int(RES * long_ / short)  # torchvision's Resize(int)
    nw, nh = (new_short, new_long) if w <= h else (new_long, new_short)
    im = im.resize((nw, nh), Image.BICUBIC)
    top, left = int(round((nh - RES) / 2.0)), int(round((nw - RES) / 2.0))
    im = im.crop((left, top, left + RES, top + RES))
    a = np.asarray(im, dtype=np.float64) / 255.0
    mean = np.array([0.48145466, 0.4578275, 0.40821073])
    std = np.array([0.26862954, 0.26130258, 0.27577711])
    return ((a - mean) / std).transpose(2, 0, 1)  # [3, 224, 224]


gold = {}
for i, (w, h) in enumerate([(64, 64), (300, 240), (50, 75)]):
    rgb = make_image(w, h, i)
    px = preprocess(rgb)
    with torch.no_grad():
        feat = model.encode_image(torch.from_numpy(px)[None])[0]
    gold[f"image.{i}.rgb"] = rgb
    gold[f"image.{i}.pixels_rows0_8"] = px[:, :8, :].copy()  # the full map would be 1.2 MB
    gold[f"image.{i}.features"] = (feat / feat.norm()).numpy()
    gold[f"image.{i}.raw"] = feat.numpy()

tok = SimpleTokenizer()
texts = ["nude", "photo of a man", "illustration of exposed breasts",
         "nel ov lexi lov thwatchin thalaireason zz big oj anticipation บci ov prick"]
for i, t in enumerate(texts):
    ids = [49406] + tok.encode(t)[:75] + [49407]
    ids += [0] * (CTX - len(ids))  # open_clip pads with 0; the pooled row is the EOS (the max id)
    with torch.no_grad():
        feat = model.encode_text(torch.tensor([ids]))[0]
    gold[f"text.{i}.ids"] = np.array(ids, dtype=np.int64)
    gold[f"text.{i}.features"] = (feat / feat.norm()).numpy()
st_write(OUT + "/golden.safetensors", gold)
with open(OUT + "/texts.json", "w") as fh:
    json.dump(texts, fh, ensure_ascii=False, indent=0)


# ---- horde-safety's decision on crafted similarities ----
class StubInterrogator:
    scores = {}

    def image_to_features(self, image):
        return None

    def similarities(self, image_features, text_array):
        return [self.scores.get(t, 0.0) for t in text_array]


stub = StubInterrogator()
checker = NSFWChecker(stub, None)
preds = checker.all_predicates
concepts = checker.all_nsfw_concepts
danger = checker._combined_underage_danger_concepts
from PIL import Image  # noqa: E402

dummy = Image.new("RGB", (8, 8))
crng = random.Random(7)
cases = []


def run(name, scores, prompt):
    stub.scores = scores
    r = checker.check_for_nsfw(dummy, prompt=prompt, model_info={"nsfw": True})
    cases.append({"name": name, "prompt": prompt,
                  "scores": {k: v for k, v in scores.items() if v != 0.0},
                  "is_nsfw": r.is_nsfw, "is_csam": r.is_csam, "is_anime": r.is_anime,
                  "is_underage_subject": r.is_underage_subject,
                  "is_neg_prompt_suspect": r.is_neg_prompt_suspect})


def q(x):
    return round(x, 4)


# each threshold from both sides, alone and with a human predicate matched
everything = list(dict.fromkeys(list(preds) + list(concepts)))
for k in everything:
    th = preds.get(k, concepts.get(k))
    for d in (-0.0001, 0.0, 0.0001):
        run(f"{k} {d:+}", {k: q(th + d), "man": 0.2}, "")
for k, th in danger.items():
    for d in (-0.0001, 0.0001):
        run(f"danger {k} {d:+}", {k: q(th + d), "nude": 0.3, "man": 0.2}, "")
# the second pass, the pairs, the anime branch and the negative prompt
negs = ["", "a ### old", "x ### m a t u r e", "x ### (adult:1.2)", "x ### elderly, bad",
        "x ### bold", "x ###middle  aged", "x ### oldest"]
for n in range(150):
    base = crng.choice([0.17, 0.18, 0.19, 0.2])
    sc = {k: q(base + crng.uniform(-0.02, 0.05)) for k in everything if crng.random() < 0.5}
    if n % 3 == 0:
        for a in checker.anime_cartoon_predicates:
            sc[a] = q(crng.uniform(0.19, 0.215))
    if n % 4 == 0:
        for k in [k for k in sc if "photo" in k][:3]:
            sc[k] = q(crng.uniform(0.23, 0.25))
    run(f"random {n}", sc, crng.choice(negs))

doc = {"source": "Haidra-Org/horde-safety ebea47ad nsfw_checker_class.py, NSFWChecker(stub, None)",
       "predicates": [[k, v] for k, v in preds.items()],
       "concepts": [[k, v] for k, v in concepts.items()],
       "danger": [[k, v] for k, v in danger.items()],
       "underage": [[k, v] for k, v in checker._combined_underage_predicates.items()],
       "cases": cases}
with open(OUT + "/decisions.json", "w") as fh:
    json.dump(doc, fh, ensure_ascii=False, separators=(",", ":"))
print("cases", len(cases), "nsfw", sum(c["is_nsfw"] for c in cases), "csam",
      sum(c["is_csam"] for c in cases), "anime", sum(c["is_anime"] for c in cases),
      "underage", sum(c["is_underage_subject"] for c in cases),
      "negsuspect", sum(c["is_neg_prompt_suspect"] for c in cases))
