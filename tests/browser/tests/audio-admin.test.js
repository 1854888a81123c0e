// Audio recording in the admin pages, in headless Chromium: off unless an admin switches it
// on (the CLI's --record-audio or the form's switch), every switch in the audit log, and the
// camera list marking the cameras that record sound.

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
  cam = await h.startTestcam(["--mounts", "3", "--width", "320", "--height", "240", "--audio", "pcma", "--no-sub"],
    "testcam-audio-admin");
  const rec = new h.Recorder();
  await rec.init();
  await rec.addCamera("Till", cam.urls[0], null, ["--record-audio"]);
  await rec.addCamera("Yard", cam.urls[1]);
  base = await rec.serve();
}, { timeout: 300e3 });

after(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  h.killAll();
});

/** record_audio of each camera by name, from the API with the page's session. */
async function recordAudio(page) {
  const r = await page.request.get(`${base}/api/cameras`);
  assert.equal(r.status(), 200);
  return Object.fromEntries((await r.json()).map((c) => [c.name, c.record_audio]));
}

test("an admin switches sound recording on in the form; the list marks it and the log has it", { timeout: 180e3 }, async () => {
  const page = await (await browser()).newPage();
  await h.login(page, base, h.ADMIN);
  assert.deepEqual(await recordAudio(page), { Till: true, Yard: false }, "off unless --record-audio");
  await page.locator("#nav a", { hasText: "Cameras" }).click();
  const till = page.locator("#cameras-table tr", { hasText: "Till" });
  const yard = page.locator("#cameras-table tr", { hasText: "Yard" });
  await till.locator(".sound-badge").waitFor({ timeout: 15e3 });
  assert.equal(await yard.locator(".sound-badge").count(), 0, "no badge on a camera that records no sound");

  // A new camera's form starts with sound off, and its test says what sound the camera sends.
  await page.locator("#add-camera").click();
  assert.equal(await page.locator("#cam-record-audio").isChecked(), false);
  // A mount nobody reads: the test camera's shared media with sound takes one client at a time.
  await page.locator("#cam-url").fill(cam.urls[2]);
  await page.locator("#test-camera").click();
  await page.locator("#test-audio").waitFor({ timeout: 30e3 });
  assert.equal(await page.locator("#test-audio").innerText(),
    'G.711 A-law (PCMA), 8 kHz, mono (recorded only if "Record sound" is on)');
  await page.locator("dialog[open] button", { hasText: "Cancel" }).click();
  await page.locator("dialog[open]").waitFor({ state: "detached" });

  await yard.locator("button[title=Edit], button[aria-label=Edit]").first().click();
  const sw = page.locator("#cam-record-audio");
  assert.equal(await sw.getAttribute("role"), "switch");
  assert.equal(await sw.isChecked(), false);
  assert.equal(await page.locator("#cam-audio-reason").isVisible(), false, "no reason asked before the switch moves");
  await sw.check();
  await page.locator("#cam-audio-reason").fill("Gate intercom disputes; DPIA 2026-14");
  await page.locator("dialog[open] button.primary").click();
  await page.locator("dialog[open]").waitFor({ state: "detached", timeout: 30e3 });
  await yard.locator(".sound-badge").waitFor({ timeout: 15e3 });
  assert.deepEqual(await recordAudio(page), { Till: true, Yard: true });
  await h.screenshot(page, "cameras-admin-sound");

  const audit = await page.request.get(`${base}/api/audit?action=camera_change&object=camera:2`);
  assert.equal(audit.status(), 200);
  const entries = await audit.json();
  assert.equal(entries.length, 1, JSON.stringify(entries));
  assert.equal(entries[0].actor, h.ADMIN.username);
  const detail = typeof entries[0].detail === "string" ? JSON.parse(entries[0].detail) : entries[0].detail;
  assert.equal(detail.record_audio, true);
  assert.equal(detail.record_audio_changed, true);
  assert.equal(detail.audio_reason, "Gate intercom disputes; DPIA 2026-14");
});

test("a guard sees which cameras record sound on the live grid and the camera page", { timeout: 120e3 }, async () => {
  // The admin switches Yard's sound off again: one camera with sound, one without.
  const admin = await (await browser()).newPage();
  await h.login(admin, base, h.ADMIN);
  const me = await (await admin.request.get(`${base}/api/me`)).json();
  const off = await admin.request.patch(`${base}/api/cameras/2`,
    { headers: { "X-CSRF-Token": me.csrf_token }, data: { record_audio: false } });
  assert.equal(off.status(), 200);

  const page = await (await browser()).newPage();
  await h.login(page, base, h.GUARD);
  assert.deepEqual(await recordAudio(page), { Till: true, Yard: false });
  await page.locator('.tile[data-camera-id="2"]').waitFor({ timeout: 15e3 });
  await h.waitFor(async () => await page.locator('.tile[data-camera-id="1"] .tile-sound').isVisible(), 15e3,
    "Till's sound badge");
  assert.equal(await page.locator('.tile[data-camera-id="2"] .tile-sound').isVisible(), false, "no badge on Yard");
  await page.goto(`${base}/#/camera/1`);
  await h.waitFor(async () => await page.locator("#cam-sound").isVisible(), 15e3, "the camera page's sound badge");
  await h.screenshot(page, "camera-sound");
  await page.goto(`${base}/#/camera/2`);
  await h.waitFor(async () => (await page.locator(".cam-title").innerText()) === "Yard", 15e3, "Yard's page");
  assert.equal(await page.locator("#cam-sound").isVisible(), false);
});
