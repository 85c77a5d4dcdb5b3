// gesso's web page: a form over the /v1 API, progress from the job's event
// stream, the queue with cancel, and a gallery of results. No framework and
// no build step: the file is served as it is, from the binary.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { key: localStorage.getItem("gesso-key") || "", lastSeed: null, following: new Set() };

function headers(extra) {
  const h = Object.assign({}, extra || {});
  if (state.key) h.Authorization = "Bearer " + state.key;
  return h;
}

// A fetch of the API; a 401 shows the key field, other errors throw their message.
async function api(path, opts) {
  const res = await fetch(path, Object.assign({}, opts, { headers: headers((opts || {}).headers) }));
  if (res.status === 401) {
    $("key-section").hidden = false;
    throw new Error("this server needs an API key");
  }
  if (!res.ok) {
    let msg = res.status + " " + res.statusText;
    try {
      const body = await res.json();
      if (body.error && body.error.message) msg = body.error.message;
    } catch (e) { /* not JSON: keep the status line */ }
    throw new Error(msg);
  }
  return res;
}

async function loadModels() {
  try {
    const { models } = await (await api("/v1/models")).json();
    const select = $("model");
    select.textContent = "";
    for (const m of models) {
      const o = document.createElement("option");
      o.value = m.name;
      o.textContent = m.family ? `${m.name} (${m.family})` : m.name;
      select.append(o);
    }
    $("server-status").textContent = models.length ? "" : "no models in the server's models folder";
  } catch (e) {
    $("server-status").textContent = e.message;
  }
}

function readFileBase64(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result));
    r.onerror = () => reject(new Error("cannot read " + file.name));
    r.readAsDataURL(file);
  });
}

function settingsFromForm() {
  const num = (id) => Number($(id).value);
  const s = {
    model: $("model").value,
    prompt: $("prompt").value,
    negative_prompt: $("negative-prompt").value,
    sampler: $("sampler").value,
    scheduler: $("scheduler").value,
    width: num("width"),
    height: num("height"),
    steps: num("steps"),
    cfg_scale: num("cfg-scale"),
    batch_size: num("batch-size"),
    preview_every: 1,
  };
  const loras = [...$("lora-list").querySelectorAll("input")].map((w) =>
    ({ name: w.dataset.lora, weight: Number(w.value) }));
  if (loras.length) s.loras = loras;
  if ($("hires-enable").checked) Object.assign(s, hiresFromForm());
  const seed = $("seed").value.trim();
  if (seed !== "" && seed !== "-1") {
    if (!/^\d+$/.test(seed)) throw new Error("the seed is a whole number, or -1 for a new one");
    s.seed = seed; // as text: seeds run past what a JavaScript number holds exactly
  }
  return s;
}

// The hires fix's fields: a size to resize to when one is given, else the scale.
function hiresFromForm() {
  const h = { hires_upscaler: $("hires-upscaler").value, hires_denoise: Number($("hires-denoise").value) };
  const w = Number($("hires-width").value), ht = Number($("hires-height").value);
  if (w || ht) {
    if (w) h.hires_width = w;
    if (ht) h.hires_height = ht;
  } else {
    h.hires_scale = Number($("hires-scale").value);
  }
  const steps = Number($("hires-steps").value);
  if (steps) h.hires_steps = steps;
  return h;
}

// ---- the mask: white strokes on a black canvas of the init image's size ----

const mask = { painting: false, last: null };

function maskContext() {
  return $("mask-canvas").getContext("2d", { willReadFrequently: true });
}

function clearMask() {
  const c = $("mask-canvas"), g = maskContext();
  g.fillStyle = "#000";
  g.fillRect(0, 0, c.width, c.height);
}

// A1111's "inpainting mask invert" done to the drawing itself, so what is shown is what is sent.
function invertMask() {
  const c = $("mask-canvas"), g = maskContext();
  const img = g.getImageData(0, 0, c.width, c.height);
  for (let i = 0; i < img.data.length; i += 4) {
    for (let k = 0; k < 3; k++) img.data[i + k] = 255 - img.data[i + k];
    img.data[i + 3] = 255;
  }
  g.putImageData(img, 0, 0);
}

function maskIsPainted() {
  const c = $("mask-canvas");
  if (!c.width) return false;
  const d = maskContext().getImageData(0, 0, c.width, c.height).data;
  for (let i = 0; i < d.length; i += 4) if (d[i]) return true;
  return false;
}

// The pointer's place in the canvas's own pixels (it is shown scaled to fit).
function canvasPoint(e) {
  const c = $("mask-canvas"), r = c.getBoundingClientRect();
  return { x: (e.clientX - r.left) * c.width / r.width, y: (e.clientY - r.top) * c.height / r.height };
}

function paintTo(p) {
  const g = maskContext();
  g.strokeStyle = g.fillStyle = "#fff";
  g.lineWidth = Number($("brush-size").value);
  g.lineCap = g.lineJoin = "round";
  g.beginPath();
  if (mask.last) {
    g.moveTo(mask.last.x, mask.last.y);
    g.lineTo(p.x, p.y);
    g.stroke();
  } else {
    g.arc(p.x, p.y, g.lineWidth / 2, 0, 2 * Math.PI);
    g.fill();
  }
  mask.last = p;
}

function setupMaskCanvas() {
  const c = $("mask-canvas");
  c.addEventListener("pointerdown", (e) => {
    e.preventDefault();
    c.setPointerCapture(e.pointerId);
    mask.painting = true;
    mask.last = null;
    paintTo(canvasPoint(e));
  });
  c.addEventListener("pointermove", (e) => { if (mask.painting) paintTo(canvasPoint(e)); });
  const stop = () => { mask.painting = false; mask.last = null; };
  c.addEventListener("pointerup", stop);
  c.addEventListener("pointercancel", stop);
  $("clear-mask").onclick = clearMask;
  $("invert-mask").onclick = invertMask;
}

// A new init image: shown under an empty mask of its size.
async function showInitImage() {
  const file = $("init-image").files[0];
  $("mask-editor").hidden = !file;
  if (!file) return;
  const img = new Image();
  img.src = await readFileBase64(file);
  await img.decode();
  for (const c of [$("init-canvas"), $("mask-canvas")]) {
    c.width = img.naturalWidth;
    c.height = img.naturalHeight;
  }
  $("init-canvas").getContext("2d").drawImage(img, 0, 0);
  clearMask();
}

// ---- LoRAs: the server's folder, each added with its weight ----

async function loadLoras() {
  try {
    const { loras } = await (await api("/v1/loras")).json();
    const select = $("lora-pick");
    select.textContent = "";
    for (const l of loras) {
      const o = document.createElement("option");
      o.value = o.textContent = l.name;
      select.append(o);
    }
    $("lora-section").hidden = !loras.length;
  } catch (e) {
    $("lora-section").hidden = true;
  }
}

function addLora() {
  const name = $("lora-pick").value;
  if (!name) return;
  const id = "lora-weight-" + name;
  if ($(id)) return $(id).focus();
  const li = document.createElement("li");
  const box = document.createElement("div");
  const label = document.createElement("label");
  label.htmlFor = id;
  label.textContent = `${name} weight`;
  const weight = document.createElement("input");
  Object.assign(weight, { id, type: "number", min: -10, max: 10, step: 0.01, value: 1 });
  weight.dataset.lora = name;
  box.append(label, weight);
  const remove = document.createElement("button");
  remove.type = "button";
  remove.textContent = "Remove";
  remove.setAttribute("aria-label", `Remove LoRA ${name}`);
  remove.onclick = () => li.remove();
  li.append(box, remove);
  $("lora-list").append(li);
}

async function generate(event) {
  if (event) event.preventDefault();
  $("form-error").textContent = "";
  try {
    const s = settingsFromForm();
    const file = $("init-image").files[0];
    if (file) {
      s.init_image = await readFileBase64(file);
      s.strength = Number($("strength").value);
      if (maskIsPainted()) {
        s.mask = $("mask-canvas").toDataURL("image/png");
        s.mask_blur = Number($("mask-blur").value);
        s.inpaint_fill = $("inpaint-fill").value;
        s.inpaint_full_res = $("inpaint-full-res").checked ? 1 : 0;
        s.inpaint_padding = Number($("inpaint-padding").value);
      }
    }
    const res = await api("/v1/jobs", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(s),
    });
    const { id } = await res.json();
    refreshQueue();
    follow(id, s);
  } catch (e) {
    $("form-error").textContent = e.message;
  }
}

// Reads the job's Server-Sent Events through fetch (EventSource cannot send a key).
async function follow(id, settings) {
  if (state.following.has(id)) return;
  state.following.add(id);
  try {
    const res = await api(`/v1/jobs/${id}/events`);
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let text = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      let end;
      while ((end = text.indexOf("\n\n")) >= 0) {
        const block = text.slice(0, end);
        text = text.slice(end + 2);
        let name = "message", data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) name = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        if (data) onEvent(id, settings, name, JSON.parse(data), data);
      }
    }
  } catch (e) {
    $("progress-text").textContent = e.message;
  } finally {
    state.following.delete(id);
    refreshQueue();
  }
}

function onEvent(id, settings, name, d, raw) {
  const text = $("progress-text");
  if (name === "queued") {
    text.textContent = `Job ${id.slice(-6)} queued, position ${d.position + 1}`;
  } else if (name === "started") {
    text.textContent = `Job ${id.slice(-6)} started`;
    refreshQueue();
  } else if (name === "progress") {
    $("progress").value = d.step / d.steps;
    const eta = d.eta_s != null ? `, about ${Math.ceil(d.eta_s)} s left` : "";
    text.textContent = `Step ${d.step} of ${d.steps}${eta}`;
    if (d.preview) {
      $("preview").src = d.preview;
      $("preview").hidden = false;
    }
  } else if (name === "succeeded") {
    // the seed's digits as sent: past 2^53 a JavaScript number would round it
    const m = /"seed":(\d+)/.exec(raw);
    if (m) d.seed = m[1];
    $("progress").value = 1;
    text.textContent = `Job ${id.slice(-6)} done, seed ${d.seed}`;
    state.lastSeed = d.seed;
    $("preview").hidden = true;
    d.images.forEach((url) => addResult(url, settings, d.seed));
  } else if (name === "failed") {
    $("preview").hidden = true;
    text.textContent = `Job ${id.slice(-6)} failed: ${d.error}`;
  } else if (name === "cancelled") {
    $("preview").hidden = true;
    text.textContent = `Job ${id.slice(-6)} cancelled`;
  } else if (name === "stopping") {
    text.textContent = "The server is stopping; the job goes on when it is back";
  }
}

// The settings as A1111 writes them under an image (its "PNG Info"); the PNG
// itself carries the server's own text in its parameters chunk.
function infotext(s, seed) {
  const sampler = $("sampler").querySelector(`option[value="${s.sampler}"]`);
  const parts = [`Steps: ${s.steps}`, `Sampler: ${sampler ? sampler.textContent : s.sampler}`];
  if (s.scheduler !== "default") parts.push(`Schedule type: ${s.scheduler[0].toUpperCase()}${s.scheduler.slice(1)}`);
  parts.push(`CFG scale: ${s.cfg_scale}`, `Seed: ${seed}`, `Size: ${s.width}x${s.height}`, `Model: ${s.model}`);
  if (s.init_image) parts.push(`Denoising strength: ${s.strength}`);
  if (s.mask) parts.push(`Mask blur: ${s.mask_blur}`);
  if (s.hires_upscaler) {
    parts.push(`Denoising strength: ${s.hires_denoise}`);
    if (s.hires_scale) parts.push(`Hires upscale: ${s.hires_scale}`);
    else parts.push(`Hires resize: ${s.hires_width || 0}x${s.hires_height || 0}`);
    if (s.hires_steps) parts.push(`Hires steps: ${s.hires_steps}`);
    parts.push(`Hires upscaler: ${$("hires-upscaler").selectedOptions[0].textContent}`);
  }

  // A1111 keeps LoRAs in the prompt as tags: pasted there, the infotext brings them back
  const tags = (s.loras || []).map((l) => ` <lora:${l.name}:${l.weight}>`).join("");
  const neg = s.negative_prompt ? `\nNegative prompt: ${s.negative_prompt}` : "";
  return `${s.prompt}${tags}${neg}\n${parts.join(", ")}`;
}

async function addResult(url, settings, seed) {
  const fig = document.createElement("figure");
  const img = document.createElement("img");
  img.alt = settings.prompt || "generated image";
  // without a key the image URL itself; with one, the bytes fetched with it
  img.src = state.key ? URL.createObjectURL(await (await api(url)).blob()) : url;
  const cap = document.createElement("figcaption");
  const pre = document.createElement("pre");
  pre.className = "parameters";
  pre.textContent = infotext(settings, seed);
  const copy = document.createElement("button");
  copy.type = "button";
  copy.textContent = "Copy parameters";
  copy.onclick = () => navigator.clipboard.writeText(pre.textContent);
  const down = document.createElement("a");
  down.href = img.src;
  down.download = `gesso-${seed}.png`;
  down.textContent = "Download PNG";
  const reuse = document.createElement("button");
  reuse.type = "button";
  reuse.textContent = "Reuse seed";
  reuse.onclick = () => { $("seed").value = String(seed); };
  cap.append(pre, copy, " ", reuse, " ", down);
  fig.append(img, cap);
  $("gallery").prepend(fig);
}

async function refreshQueue() {
  try {
    const lists = await Promise.all(["running", "queued"].map(async (st) =>
      (await (await api(`/v1/jobs?status=${st}&limit=100`)).json()).jobs));
    const ul = $("queue");
    ul.textContent = "";
    for (const job of lists.flat()) {
      const li = document.createElement("li");
      li.dataset.job = job.id;
      const p = job.progress;
      const steps = job.status !== "running" ? "" : p.steps ? ` step ${p.step}/${p.steps}` : " starting";
      li.textContent = `${job.model} ${job.status}${steps} (${job.id.slice(-6)}) `;
      const cancel = document.createElement("button");
      cancel.type = "button";
      cancel.textContent = "Cancel";
      cancel.setAttribute("aria-label", `Cancel job ${job.id}`);
      cancel.onclick = async () => {
        try {
          await api(`/v1/jobs/${job.id}`, { method: "DELETE" });
        } catch (e) {
          $("form-error").textContent = e.message;
        }
        refreshQueue();
      };
      li.append(cancel);
      ul.append(li);
    }
    if (!ul.children.length) ul.innerHTML = "<li>Nothing queued</li>";
  } catch (e) {
    $("queue").textContent = e.message;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("generate-form").addEventListener("submit", generate);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) generate(e);
  });
  $("reuse-seed").onclick = () => { if (state.lastSeed != null) $("seed").value = String(state.lastSeed); };
  $("save-key").onclick = () => {
    state.key = $("api-key").value.trim();
    localStorage.setItem("gesso-key", state.key);
    $("key-section").hidden = true;
    loadModels();
    loadLoras();
    refreshQueue();
  };
  $("init-image").addEventListener("change", () =>
    showInitImage().catch((e) => { $("form-error").textContent = e.message; }));
  $("add-lora").onclick = addLora;
  setupMaskCanvas();
  loadModels();
  loadLoras();
  refreshQueue();
  setInterval(refreshQueue, 3000);
});
