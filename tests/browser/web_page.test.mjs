// The web page in headless Chromium, as a person uses it: find the controls by
// their labels, fill the form, generate, watch progress, see the image and its
// parameters, cancel a queued job from the queue, and keep a screenshot.
//   node web_page.test.mjs BASE_URL OUT_DIR   (CHROMIUM names the browser)
import assert from "node:assert/strict";
import puppeteer from "puppeteer-core";

const [base, out] = process.argv.slice(2);
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

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const errors = [];
try {
  const page = await browser.newPage();
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  await page.setViewport({ width: 420, height: 900, isMobile: true }); // a phone
  await page.goto(base + "/", { waitUntil: "networkidle0" });

  step("every control has a visible label");
  for (const label of ["Prompt", "Negative prompt", "Model", "Sampler", "Scheduler", "Width",
    "Height", "Steps", "CFG scale", "Batch size", "Seed"])
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
  await page.click(`#queue li[data-job="${queuedId}"] button`);
  await page.waitForFunction((id) => !document.querySelector(`#queue li[data-job="${id}"]`),
    { timeout: 30000 }, queuedId);
  const cancelled = await api(`/v1/jobs/${queuedId}`);
  assert.equal(cancelled.status, "cancelled");
  await page.waitForFunction(() => /cancelled/.test(document.getElementById("progress-text").textContent),
    { timeout: 30000 });
  await api(`/v1/jobs/${blocker.id}`, { method: "DELETE" });

  await page.screenshot({ path: `${out}/web-page.png`, fullPage: true });
  assert.deepEqual(errors, [], "no script errors on the page");
  step(`passed (screenshot: ${out}/web-page.png)`);
} finally {
  await browser.close();
}
