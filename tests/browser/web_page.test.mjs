// The web page in headless Chromium, as a person uses it: find the controls by
// their labels, fill the form, generate, watch progress, see the image and its
// parameters, cancel a queued job from the queue; then the hires fix with a
// LoRA from the picker, and inpainting with a mask drawn over an uploaded init
// image, checking the job each submits; and keep a screenshot.
//   node web_page.test.mjs BASE_URL OUT_DIR INIT.png   (CHROMIUM names the browser;
//   the server's LoRA folder holds tiny_a)
import assert from "node:assert/strict";
import puppeteer from "puppeteer-core";

const [base, out, initPng] = process.argv.slice(2);
const step = (what) => console.log(`web page: ${what}`);

async function api(path, init) {
  const res = await fetch(base + path, init);
  assert.ok(res.ok, `${path}: ${res.status}`);
  return res.json();
}

// The control a visible <label> names, as assistive technology finds it.
async function byLabel(page, text) {
  const id = await page.evaluate((t) => {
    const label = [...document.querySelectorAll("label")].find((l) => l.textContent.trim() === t);
    return label ? label.htmlFor : null;
  }, text);
  assert.ok(id, `no control labelled "${text}"`);
  return page.$(`#${id}`);
}

async function setValue(page, label, value) {
  const el = await byLabel(page, label);
  await el.click({ clickCount: 3 });
  await el.evaluate((e) => { e.value = ""; });
  await el.type(String(value));
}

// The job's first image's A1111 "parameters" text (its tEXt chunk, Latin-1).
async function pngParameters(id) {
  const res = await fetch(`${base}/v1/jobs/${id}/images/0`);
  assert.ok(res.ok);
  const png = Buffer.from(await res.arrayBuffer());
  for (let at = 8; at + 8 <= png.length;) {
    const len = png.readUInt32BE(at), type = png.toString("latin1", at + 4, at + 8);
    const data = png.toString("latin1", at + 8, at + 8 + len);
    if (type === "tEXt" && data.startsWith("parameters\0")) return data.slice(11);
    at += 12 + len;
  }
  assert.fail("the PNG carries no parameters");
}

// Clicks Generate; the job's JSON as the page sent it, and its id.
async function submitted(page) {
  const [req, res] = await Promise.all([
    page.waitForRequest((r) => r.method() === "POST" && new URL(r.url()).pathname === "/v1/jobs"),
    page.waitForResponse((r) => r.request().method() === "POST" && new URL(r.url()).pathname === "/v1/jobs"),
    page.click("button#generate"),
  ]);
  assert.equal(res.status(), 202, await res.text());
  return { body: JSON.parse(req.postData()), id: (await res.json()).id };
}

// Waits for the job's image in the gallery, at w x h.
async function resultOf(page, id, w, h) {
  await page.waitForFunction((id, w, h) => {
    const img = document.querySelector("#gallery figure img");
    return img && img.getAttribute("src") === `/v1/jobs/${id}/images/0` && img.complete &&
      img.naturalWidth === w && img.naturalHeight === h;
  }, { timeout: 120000 }, id, w, h);
}

// A stroke across the middle of the mask canvas, left to right: image x 16..48
// at y 32 with the page's brush at 10 pixels.
async function paintStroke(page) {
  await page.$eval("#brush-size", (b) => { b.value = "10"; });
  const canvas = await page.$("#mask-canvas");
  await canvas.scrollIntoView();
  const box = await canvas.boundingBox();
  await page.mouse.move(box.x + box.width * 0.25, box.y + box.height * 0.5);
  await page.mouse.down();
  for (let i = 1; i <= 8; i++)
    await page.mouse.move(box.x + box.width * (0.25 + i / 16), box.y + box.height * 0.5);
  await page.mouse.up();
}

// The mask canvas as a PNG data URL, as the page would send it.
function canvasMask(page) {
  return page.$eval("#mask-canvas", (c) => c.toDataURL("image/png"));
}

// The red value of the mask image at each [x, y], decoded by the browser.
function maskAt(page, url, points) {
  return page.evaluate(async (url, points) => {
    const img = new Image();
    img.src = url;
    await img.decode();
    const c = Object.assign(document.createElement("canvas"), { width: img.width, height: img.height });
    const g = c.getContext("2d");
    g.drawImage(img, 0, 0);
    return points.map(([x, y]) => g.getImageData(x, y, 1, 1).data[0]);
  }, url, points);
}

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const errors = [];
let page0 = null;
try {
  const page = await browser.newPage();
  page0 = page;
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  await page.setViewport({ width: 420, height: 900, isMobile: true }); // a phone
  await page.goto(base + "/", { waitUntil: "networkidle0" });

  step("every control has a visible label");
  for (const label of ["Prompt", "Negative prompt", "Model", "Sampler", "Scheduler", "Width",
    "Height", "Steps", "CFG scale", "Batch size", "Seed", "Init image", "Denoising strength",
    "Brush size", "Mask blur", "Masked content", "Only masked", "Only masked padding, pixels",
    "Enable hires. fix", "Upscaler", "Upscale by", "Resize width to", "Resize height to",
    "Hires steps", "Hires denoising strength", "LoRA"])
    await byLabel(page, label);
  await page.waitForFunction(() =>
    [...document.querySelectorAll("#model option")].some((o) => o.value === "tiny-sd15"));
  const modelText = await page.$eval("#model option", (o) => o.textContent);
  assert.match(modelText, /tiny-sd15 \(sd1\)/i, "the model picker shows the family");

  step("fill the form and generate");
  await setValue(page, "Prompt", "a lighthouse at dusk");
  await setValue(page, "Negative prompt", "blurry");
  await setValue(page, "Width", 64);
  await setValue(page, "Height", 64);
  await setValue(page, "Steps", 2);
  await setValue(page, "Seed", 1234);
  const generate = await page.$("button#generate");
  assert.equal(await generate.evaluate((b) => b.textContent.trim()), "Generate");
  await generate.click();

  step("progress moves and the image arrives with its parameters");
  await page.waitForFunction(() => document.getElementById("progress").value > 0, { timeout: 120000 });
  await page.waitForSelector("#gallery figure img", { timeout: 120000 });
  const src = await page.$eval("#gallery figure img", (i) => i.getAttribute("src"));
  assert.match(src, /^\/v1\/jobs\/[0-9a-f-]{36}\/images\/0$/, "the image is the job's image URL");
  await page.waitForFunction(() => {
    const img = document.querySelector("#gallery figure img");
    return img.complete && img.naturalWidth === 64;
  });
  const params = await page.$eval("#gallery .parameters", (p) => p.textContent);
  assert.match(params, /^a lighthouse at dusk\nNegative prompt: blurry\n/);
  assert.match(params, /Steps: 2, Sampler: Euler a, CFG scale: 7, Seed: 1234, Size: 64x64, Model: tiny-sd15/);
  assert.match(await page.$eval("#progress-text", (p) => p.textContent), /done, seed 1234/);

  step("reuse the seed");
  await setValue(page, "Seed", -1);
  await page.click("#reuse-seed");
  assert.equal(await page.$eval("#seed", (s) => s.value), "1234");

  step("a queued job is cancelled from the queue (Ctrl+Enter generates)");
  const blocker = await api("/v1/jobs", {
    method: "POST",
    body: JSON.stringify({ model: "tiny-sd15", prompt: "busy", steps: 150, width: 128, height: 128 }),
  });
  await setValue(page, "Prompt", "a queued job");
  await page.focus("#prompt");
  await page.keyboard.down("Control");
  await page.keyboard.press("Enter");
  await page.keyboard.up("Control");
  const queued = await page.waitForFunction(async () => {
    const res = await fetch("/v1/jobs?status=queued");
    const { jobs } = await res.json();
    const job = jobs.find((j) => j.status === "queued");
    return job && document.querySelector(`#queue li[data-job="${job.id}"] button`) ? job.id : null;
  }, { timeout: 30000 });
  const queuedId = await queued.jsonValue();
  // the queue list is redrawn as it polls: a handle found first can be detached by the
  // time it is clicked, so the button is found and clicked in one step of the page
  await page.waitForFunction((id) => {
    const button = document.querySelector(`#queue li[data-job="${id}"] button`);
    button?.click();
    return Boolean(button);
  }, { timeout: 30000 }, queuedId);
  await page.waitForFunction((id) => !document.querySelector(`#queue li[data-job="${id}"]`),
    { timeout: 30000 }, queuedId);
  const cancelled = await api(`/v1/jobs/${queuedId}`);
  assert.equal(cancelled.status, "cancelled");
  await page.waitForFunction(() => /cancelled/.test(document.getElementById("progress-text").textContent),
    { timeout: 30000 });
  await api(`/v1/jobs/${blocker.id}`, { method: "DELETE" });

  step("the LoRA picker lists the server's LoRA and adds it with its weight");
  await page.waitForFunction(() =>
    [...document.querySelectorAll("#lora-pick option")].some((o) => o.value === "tiny_a"));
  await page.click("#lora-section summary");
  await page.select("#lora-pick", "tiny_a");
  await page.click("#add-lora");
  await setValue(page, "tiny_a weight", 0.5);

  step("a hires fix job: its fields in the job, the result at the hires size");
  await page.click("#hires-section summary");
  await page.click("#hires-enable");
  await setValue(page, "Upscale by", 2);
  await setValue(page, "Hires steps", 1);
  await setValue(page, "Hires denoising strength", 0.5);
  await page.select("#hires-upscaler", "latent-bicubic");
  await setValue(page, "Prompt", "a hires lighthouse");
  await setValue(page, "Seed", 77);
  const hires = await submitted(page);
  assert.equal(hires.body.hires_scale, 2);
  assert.equal(hires.body.hires_steps, 1);
  assert.equal(hires.body.hires_denoise, 0.5);
  assert.equal(hires.body.hires_upscaler, "latent-bicubic");
  assert.equal(hires.body.hires_width, undefined, "the scale, not a size, when no size is given");
  assert.deepEqual(hires.body.loras, [{ name: "tiny_a", weight: 0.5 }]);
  await resultOf(page, hires.id, 128, 128);
  // the server's own infotext in the PNG says what it ran
  const hiresText = await pngParameters(hires.id);
  assert.match(hiresText, /Size: 64x64, .*Hires upscale: 2, Hires steps: 1, Hires upscaler: Latent \(bicubic\)/);
  assert.match(hiresText, /Lora hashes: "tiny_a: /, "the server ran the LoRA");
  const hiresParams = await page.$eval("#gallery .parameters", (p) => p.textContent);
  assert.match(hiresParams, /^a hires lighthouse <lora:tiny_a:0\.5>\n/);
  assert.match(hiresParams, /Size: 64x64, .*Denoising strength: 0\.5, Hires upscale: 2, Hires steps: 1, Hires upscaler: Latent \(bicubic\)/);
  await page.click("#hires-enable");
  await page.click('#lora-list button[aria-label="Remove LoRA tiny_a"]');

  step("inpainting: a mask painted over the uploaded init image goes with the job");
  await page.click("#img2img-section summary");
  const file = await byLabel(page, "Init image");
  await file.uploadFile(initPng);
  await page.waitForFunction(() => !document.getElementById("mask-editor").hidden &&
    document.getElementById("mask-canvas").width === 64);
  await paintStroke(page);
  step("invert shows the mask inverted, and twice gives it back");
  await page.click("#invert-mask");
  assert.deepEqual(await maskAt(page, await canvasMask(page), [[32, 32], [2, 2]]), [0, 255]);
  await page.click("#invert-mask");
  await setValue(page, "Mask blur", 2);
  await page.select("#inpaint-fill", "latent_noise");
  await setValue(page, "Prompt", "an inpainted lighthouse");
  await setValue(page, "Seed", 5);
  const inpaint = await submitted(page);
  assert.equal(inpaint.body.mask_blur, 2);
  assert.equal(inpaint.body.inpaint_fill, "latent_noise");
  assert.equal(inpaint.body.inpaint_full_res, 0);
  assert.match(inpaint.body.init_image, /^data:image\/png;base64,/);
  assert.match(inpaint.body.mask, /^data:image\/png;base64,/);
  // the painted pixels are white (repaint), the rest black (keep); opaque, so
  // the engine reads the mask's luma and not an alpha
  const pixels = await maskAt(page, inpaint.body.mask, [[16, 32], [32, 32], [47, 32], [32, 10], [2, 2], [62, 62]]);
  assert.deepEqual(pixels, [255, 255, 255, 0, 0, 0], "the mask is white where painted");
  const alpha = await page.evaluate(async (url) => {
    const img = new Image();
    img.src = url;
    await img.decode();
    const c = Object.assign(document.createElement("canvas"), { width: img.width, height: img.height });
    const g = c.getContext("2d");
    g.drawImage(img, 0, 0);
    return Math.min(...g.getImageData(0, 0, c.width, c.height).data.filter((_, i) => i % 4 === 3));
  }, inpaint.body.mask);
  assert.equal(alpha, 255, "the mask is opaque");
  await resultOf(page, inpaint.id, 64, 64);
  assert.equal((await api(`/v1/jobs/${inpaint.id}`)).status, "succeeded");
  assert.match(await pngParameters(inpaint.id), /Mask blur: 2/, "the server inpainted");
  assert.match(await page.$eval("#gallery .parameters", (p) => p.textContent), /Denoising strength: 0\.75, Mask blur: 2/);

  step("clear leaves no mask: plain image to image");
  await page.click("#clear-mask");
  await setValue(page, "Prompt", "img2img without a mask");
  const plain = await submitted(page);
  assert.equal(plain.body.mask, undefined);
  assert.ok(plain.body.init_image);
  await resultOf(page, plain.id, 64, 64);
  await paintStroke(page); // for the screenshot

  await page.screenshot({ path: `${out}/web-page.png`, fullPage: true });
  assert.deepEqual(errors, [], "no script errors on the page");
  step(`passed (screenshot: ${out}/web-page.png)`);
} catch (e) {
  // what the page said, for a failure's log
  console.log("page errors:", errors);
  await page0?.screenshot({ path: `${out}/web-page-failed.png`, fullPage: true }).catch(() => {});
  throw e;
} finally {
  await browser.close();
}
