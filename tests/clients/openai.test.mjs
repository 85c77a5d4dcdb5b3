// The official `openai` npm client against a real `gesso serve` (started by
// run-openai.sh with the tiny fixture model and an API key): images generated
// as b64_json and as URLs, an edit and a variation as multipart uploads, the
// model list, and OpenAI-shaped errors raised as the client's own exception
// classes. Sizes are 64x64 with one step: the point is the protocol.
import assert from 'node:assert/strict';
import { File as NodeFile } from 'node:buffer';

// Debian 12's Node 18 has no global File, which the client's uploads need
if (!globalThis.File) globalThis.File = NodeFile;

const { default: OpenAI, toFile } = await import('openai');

const baseURL = `${process.env.GESSO_URL}/v1`;
const client = new OpenAI({ apiKey: process.env.GESSO_KEY, baseURL, maxRetries: 0, timeout: 120000 });
const quick = { model: 'tiny-sd15', size: '64x64', steps: 1 };

function assertPng(bytes, width, height) {
  assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.equal(bytes.readUInt32BE(16), width); // IHDR
  assert.equal(bytes.readUInt32BE(20), height);
}

async function expectError(promise, klass, status, param, code) {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof klass, `${err.constructor.name}: ${err.message}`);
    assert.equal(err.status, status);
    assert.equal(err.param, param);
    assert.equal(err.code, code);
    assert.equal(err.type, status >= 500 ? 'server_error' : 'invalid_request_error');
    assert.ok(err.message.length > 0);
    return err;
  }
  assert.fail(`expected ${klass.name}`);
}

const steps = [];
function step(name, fn) {
  steps.push([name, fn]);
}

let png;
step('generate, b64_json (the default)', async () => {
  const res = await client.images.generate({ ...quick, prompt: 'a lighthouse', n: 2, seed: 42 });
  assert.equal(typeof res.created, 'number');
  assert.equal(res.data.length, 2);
  png = Buffer.from(res.data[0].b64_json, 'base64');
  assertPng(png, 64, 64);
  assert.equal(res.seed, 42);
});

step('generate, url: the URL serves the PNG', async () => {
  const res = await client.images.generate({ ...quick, prompt: 'a lighthouse', response_format: 'url' });
  const url = res.data[0].url;
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/v1\/jobs\/[0-9a-f-]{36}\/images\/0$/);
  const got = await fetch(url, { headers: { Authorization: `Bearer ${process.env.GESSO_KEY}` } });
  assert.equal(got.status, 200);
  assert.equal(got.headers.get('content-type'), 'image/png');
  assertPng(Buffer.from(await got.arrayBuffer()), 64, 64);
});

step('edit: the image as a multipart upload', async () => {
  const image = await toFile(png, 'in.png', { type: 'image/png' });
  const res = await client.images.edit({ image, prompt: 'a boat', model: 'tiny-sd15', steps: 1 });
  assert.equal(res.data.length, 1);
  assertPng(Buffer.from(res.data[0].b64_json, 'base64'), 64, 64); // "auto": the image's size
});

step('variation', async () => {
  const image = await toFile(png, 'in.png', { type: 'image/png' });
  const res = await client.images.createVariation({ image, n: 1, size: '64x64', steps: 1 });
  assertPng(Buffer.from(res.data[0].b64_json, 'base64'), 64, 64);
});

step('models.list(): gesso models in OpenAI\'s shape', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids, ['tiny-sd15']);
});

step('a bad size is a BadRequestError naming the field', async () => {
  const err = await expectError(
    client.images.generate({ ...quick, prompt: 'x', size: '100x100' }),
    OpenAI.BadRequestError, 400, 'size', 'invalid_value');
  assert.match(err.message, /multiples of 8/);
});

step('n past the limit', async () => {
  await expectError(client.images.generate({ ...quick, prompt: 'x', n: 11 }),
    OpenAI.BadRequestError, 400, 'n', 'integer_above_max_value');
});

step('an unknown model is a NotFoundError', async () => {
  await expectError(client.images.generate({ ...quick, prompt: 'x', model: 'sd-nope' }),
    OpenAI.NotFoundError, 404, 'model', 'model_not_found');
});

step('a mask without an alpha channel is refused', async () => {
  const image = await toFile(png, 'in.png', { type: 'image/png' });
  const mask = await toFile(png, 'mask.png', { type: 'image/png' });
  await expectError(client.images.edit({ image, mask, prompt: 'x', steps: 1 }),
    OpenAI.BadRequestError, 400, 'mask', 'invalid_value');
});

step('an upload that is not an image', async () => {
  const image = await toFile(Buffer.from('not a picture'), 'in.png', { type: 'image/png' });
  await expectError(client.images.edit({ image, prompt: 'x', steps: 1 }),
    OpenAI.BadRequestError, 400, 'image', 'invalid_image');
});

step('a wrong key is an AuthenticationError', async () => {
  const stranger = new OpenAI({ apiKey: 'sk-wrong-key-0000000000', baseURL, maxRetries: 0 });
  await expectError(stranger.images.generate({ ...quick, prompt: 'x' }),
    OpenAI.AuthenticationError, 401, null, 'invalid_api_key');
});

let failed = 0;
for (const [name, fn] of steps) {
  try {
    await fn();
    console.log(`ok     ${name}`);
  } catch (err) {
    failed++;
    console.log(`FAILED ${name}\n${err.stack}`);
  }
}
console.log(`${steps.length - failed}/${steps.length} passed`);
process.exit(failed ? 1 : 0);
