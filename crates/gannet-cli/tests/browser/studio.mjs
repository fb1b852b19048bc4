// Clicks through the gannet studio in headless Chromium: generate, interpolate, translate and the
// training view, checking that the images change. Run by crates/gannet-cli/tests/studio_browser.rs:
//   STUDIO_URL=http://127.0.0.1:PORT/ SCREENSHOT_DIR=dir node studio.mjs
// Optional: CHROMIUM (default /usr/bin/chromium); STUDIO_I2I_ID, the id of an image-to-image
// checkpoint whose translate must succeed (default: test:invert when the server lists it).
// Prints one line per check and "studio browser test: N passed, M failed"; exits 1 on a failure.
import { chromium } from "playwright-core";
import { deflateSync } from "node:zlib";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const url = process.env.STUDIO_URL;
const shots = process.env.SCREENSHOT_DIR;
if (!url || !shots) throw new Error("set STUDIO_URL and SCREENSHOT_DIR");
mkdirSync(shots, { recursive: true });
let passed = 0, failed = 0;

function check(name, ok, detail = "") {
  if (ok) passed++; else failed++;
  console.log(`${ok ? "ok  " : "FAIL"} ${name}${detail ? ": " + detail : ""}`);
}

// A small RGB PNG (a diagonal gradient) to upload, built here so the test needs no files.
function testPng(w = 24, h = 24) {
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0; // filter: none
    for (let x = 0; x < w; x++) {
      const o = y * (w * 3 + 1) + 1 + x * 3;
      raw[o] = x * 10; raw[o + 1] = y * 10; raw[o + 2] = 128;
    }
  }
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => { let c = ~0; for (const b of buf) c = crcTable[(c ^ b) & 255] ^ (c >>> 8); return ~c >>> 0; };
  const chunk = (type, data) => {
    const td = Buffer.concat([Buffer.from(type), data]);
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const sum = Buffer.alloc(4); sum.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, sum]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = 2;
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk("IHDR", ihdr), chunk("IDAT", deflateSync(raw)), chunk("IEND", Buffer.alloc(0))]);
}

// Pixels of an <img> as an array (through a canvas), to compare images by content. Waits for the
// image first: an <img> still decoding has no size, and reading it then fails at random.
const pixels = async (page, selector) => (await waitLoaded(page, selector), page.$eval(selector, (img) => {
  const c = document.createElement("canvas");
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext("2d");
  g.drawImage(img, 0, 0);
  return Array.from(g.getImageData(0, 0, c.width, c.height).data);
}));
const maxDiff = (a, b) => a.length !== b.length ? Infinity : a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

async function waitLoaded(page, selector) {
  await page.waitForFunction((s) => { const i = document.querySelector(s); return i && i.complete && i.naturalWidth > 0; }, selector);
}

async function generateWithSeed(page, seed) {
  const before = await page.$eval("#samples", (s) => s.dataset.seed);
  await page.fill("#seed", String(seed));
  await page.click("#generate");
  if (before !== String(seed)) await page.waitForFunction((s) => document.querySelector("#samples").dataset.seed === s, String(seed));
  await waitLoaded(page, "#samples img:last-child");
}

async function testGenerate(page) {
  await page.fill("#count", "16");
  await generateWithSeed(page, 1);
  const tiles = await page.$$eval("#samples img", (imgs) => imgs.map((i) => i.src));
  check("generate shows 16 samples", tiles.length === 16, `${tiles.length}`);
  const first = await pixels(page, "#samples img:first-child");
  await generateWithSeed(page, 2);
  const second = await pixels(page, "#samples img:first-child");
  check("a new seed changes the images", maxDiff(first, second) > 0);
  const href = await page.getAttribute("#download-grid", "href");
  check("the grid is offered for download", !!href && href.startsWith("data:image/png;base64,"));
  await page.screenshot({ path: join(shots, "studio-generate.png"), fullPage: false });
}

async function testInterpolate(page) {
  await page.click("#samples img:nth-child(1)");
  await page.click("#samples img:nth-child(2)");
  await page.waitForFunction(() => !document.querySelector("#t").disabled);
  const setT = async (t) => {
    await page.$eval("#t", (el, v) => { el.value = v; el.dispatchEvent(new Event("input")); }, String(t));
    await page.waitForFunction((v) => document.querySelector("#frame").dataset.t === v, String(t));
    await waitLoaded(page, "#frame");
    return pixels(page, "#frame");
  };
  const a = await pixels(page, "#samples img:nth-child(1)");
  const b = await pixels(page, "#samples img:nth-child(2)");
  const f0 = await setT(0), f1 = await setT(1), fHalf = await setT(0.5);
  check("interpolation at t = 0 is sample A", maxDiff(f0, a) <= 1, `max diff ${maxDiff(f0, a)}`);
  check("interpolation at t = 1 is sample B", maxDiff(f1, b) <= 1, `max diff ${maxDiff(f1, b)}`);
  check("moving the slider changes the frame", maxDiff(fHalf, f0) > 0 && maxDiff(fHalf, f1) > 0);
  await page.screenshot({ path: join(shots, "studio-interpolate.png"), fullPage: true });
}

async function upload(page) {
  await page.setInputFiles("#upload", { name: "input.png", mimeType: "image/png", buffer: testPng() });
  await page.click("#translate");
}

async function testTranslate(page) {
  // The error path: a GAN checkpoint is not an image-to-image model.
  await upload(page);
  await page.waitForSelector("#translate-error:not([hidden])");
  const msg = await page.textContent("#translate-error");
  check("translate on a GAN checkpoint explains why not", /not an image-to-image model/.test(msg), msg);
  // The success path, on an image-to-image checkpoint when the server offers one.
  const ids = await page.$$eval("#checkpoint option", (os) => os.map((o) => o.value));
  const i2i = process.env.STUDIO_I2I_ID || (ids.includes("test:invert") ? "test:invert" : null);
  if (!i2i) { console.log("skip translate success path: no image-to-image checkpoint offered"); return; }
  check(`the image-to-image checkpoint ${i2i} is listed`, ids.includes(i2i));
  await page.selectOption("#checkpoint", i2i);
  await page.waitForFunction(() => document.querySelector("#generate-panel").hidden);
  await upload(page);
  await waitLoaded(page, "#translate-output");
  const input = await pixels(page, "#translate-input");
  const output = await pixels(page, "#translate-output");
  check("translate returns a new image", output.length > 0 && maxDiff(input, output) > 0, `${output.length / 4} pixels`);
  check("the translation is offered for download", (await page.getAttribute("#download-translation", "hidden")) === null);
  await page.screenshot({ path: join(shots, "studio-translate.png"), fullPage: true });
}

async function testTraining(page) {
  const runs = await page.$$eval("#run option", (os) => os.length);
  check("a run folder is offered to follow", runs > 0, `${runs}`);
  await page.waitForFunction(() => Number(document.querySelector("#chart").dataset.points || 0) > 0);
  await waitLoaded(page, "#latest");
  check("the training view draws metrics.csv and shows samples/latest.png", true);
  await page.locator("#training-panel").screenshot({ path: join(shots, "studio-training.png") });
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox"] });
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  page.setDefaultTimeout(30000);
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.ready === "1");
  for (const t of [testGenerate, testInterpolate, testTraining, testTranslate]) {
    try { await t(page); } catch (e) { check(t.name, false, String(e).split("\n")[0]); }
  }
  check("no JavaScript errors on the page", pageErrors.length === 0, pageErrors.join("; "));
} finally {
  await browser.close();
}
console.log(`studio browser test: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
