// Admin pages against a hostile LAN's rules, in headless Chromium: a retention change that
// would delete footage now asks first (and cancelling deletes nothing); 0 means no limit; a
// recorder serving the LAN wants the setup code from its console before anyone claims it.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as h from "../lib/harness.js";

let base;
let cam;
const contexts = [];

async function browser() {
  const ctx = await h.newBrowser();
  contexts.push(ctx);
  return ctx;
}

before(async () => {
  cam = await h.startTestcam(["--width", "320", "--height", "240"], "testcam-admin");
  const rec = new h.Recorder();
  await rec.init();
  await rec.addCamera("Yard", cam.urls[0]);
  base = await rec.serve(["--segment-duration-secs", "2"]);
}, { timeout: 300e3 });

after(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  h.killAll();
});

/** Segments of camera 1 over the last hour (with the page's session). */
async function segments(page) {
  const now = Date.now();
  const q = `start=${new Date(now - 3600e3).toISOString()}&end=${new Date(now + 60e3).toISOString()}`;
  const r = await page.request.get(`${base}/api/cameras/1/recordings?${q}`);
  assert.equal(r.status(), 200);
  return (await r.json()).runs.reduce((n, run) => n + run.segments, 0);
}

async function camera(page) {
  return (await page.request.get(`${base}/api/cameras/1`)).json();
}

/** Opens the edit dialog of the only camera and sets its byte quota (GB) to `gb`. */
async function setQuota(page, gb) {
  await page.locator("#nav a", { hasText: "Cameras" }).click();
  const row = page.locator("#cameras-table tr", { hasText: "Yard" });
  await row.waitFor({ timeout: 15e3 });
  await row.locator("button[title=Edit]").click();
  await page.locator("#cam-max-gb").fill(gb);
  await page.locator("dialog[open] button.primary", { hasText: "Save" }).click();
}

test("a retention change that deletes footage asks first; 0 keeps everything", { timeout: 240e3 }, async () => {
  const page = await (await browser()).newPage();
  await h.login(page, base, h.ADMIN);
  await h.waitFor(async () => (await segments(page)) >= 4, 90e3, "a few segments of Yard");

  // A 1 kB quota would delete nearly everything: the UI says so and waits.
  await setQuota(page, "0.000001");
  const confirm = page.locator("dialog[open]", { hasText: "Delete footage of Yard now?" });
  await confirm.waitFor({ timeout: 15e3 });
  assert.match(await confirm.innerText(), /segments .* of recordings right away/);
  await h.screenshot(page, "retention-confirm");
  const before = await segments(page);
  await confirm.locator("button", { hasText: "Cancel" }).click();
  await page.locator("#camera-error", { hasText: "no footage was deleted" }).waitFor({ timeout: 15e3 });
  assert.equal((await camera(page)).retention.max_bytes, null, "nothing was saved");
  assert.ok((await segments(page)) >= before, "nothing was deleted");
  await page.locator("dialog[open] button", { hasText: "Cancel" }).click();

  // Confirmed: the limit applies at once.
  await setQuota(page, "0.000001");
  await confirm.waitFor({ timeout: 15e3 });
  await confirm.locator("button", { hasText: "Apply and delete footage" }).click();
  await page.locator("dialog[open]").waitFor({ state: "detached", timeout: 30e3 });
  assert.equal((await camera(page)).retention.max_bytes, 1000);
  assert.ok((await segments(page)) <= 2, "the quota applied at once");

  // 0: no limit, no question, and footage accumulates again.
  await setQuota(page, "0");
  await page.locator("dialog[open]").waitFor({ state: "detached", timeout: 30e3 });
  assert.equal((await camera(page)).retention.max_bytes, null);
  const kept = await segments(page);
  await h.waitFor(async () => (await segments(page)) >= kept + 3, 60e3, "footage kept under no limit");
});

test("a recorder serving the LAN asks for the console's setup code before anyone claims it", { timeout: 120e3 }, async () => {
  const rec = new h.Recorder();
  await rec.init([]);
  const lan = await rec.serve(["--insecure-http"], { listen: "0.0.0.0:0" });
  assert.match(rec.setupCode || "", /^[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}$/, "the console shows the code");
  const page = await (await browser()).newPage();
  await page.goto(`${lan}/`);
  await page.locator("#setup-code").waitFor({ timeout: 15e3 });
  await page.locator("#setup-code").fill("AAAA-BBBB-CCCC");
  await page.locator("#setup-username").fill("chief");
  await page.locator("#setup-password").fill("first-admin-pass");
  await page.locator("#setup-password2").fill("first-admin-pass");
  await page.locator("#setup-form button[type=submit]").click();
  await page.locator("#setup-error", { hasText: "Wrong setup code" }).waitFor({ timeout: 15e3 });
  await page.locator("#setup-code").fill(rec.setupCode.toLowerCase());
  await page.locator("#setup-form button[type=submit]").click();
  await page.locator("#logout").waitFor({ timeout: 15e3 });
  assert.match(await page.locator("#who").innerText(), /chief/);
  rec.child.kill("SIGKILL");
});
