// Motion in the browser: a test camera whose scene is locked to the wall clock (a box crosses
// the lower left of the picture during seconds 5-9 and 13-15 of every 20 s period); the
// camera page shows the motion strip on the timeline, a region drawn on the picture lists the
// hits, "next motion" steps from one hit to the next, and the live grid marks the tile while
// the box moves.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as h from "../lib/harness.js";

const PERIOD = 20;
let base;
let ctx;
let id;

before(async () => {
  const cam = await h.startTestcam(["--mode", "live", "--width", "640", "--height", "360", "--fps", "10",
    "--keyint-frames", "10", "--bitrate-kbps", "600", "--scene", "moving",
    "--scene-period-secs", String(PERIOD), "--scene-events", "5-9,13-15"], "testcam-motion");
  const rec = new h.Recorder();
  await rec.init();
  await rec.addCamera("Gate", cam.urls[0]);
  base = await rec.serve();
  ctx = await h.newBrowser();
}, { timeout: 300e3 });

after(async () => {
  if (ctx) await ctx.close().catch(() => {});
  h.killAll();
});

/** The playhead's wall time (ms) from the clock readout. */
async function playhead(page) {
  return Number(await page.locator("#play-time").getAttribute("data-t"));
}

test("the strip, a region search and next motion find the box's moments", { timeout: 240e3 }, async () => {
  const page = await ctx.newPage();
  await h.login(page, base, h.ADMIN);
  id = (await (await page.request.get(`${base}/api/cameras`)).json())[0].id;
  // A whole period recorded and indexed (the analysis writes every 5 s).
  const start = Date.now();
  const p0 = (Math.floor(start / 1000 / PERIOD) + 1) * PERIOD * 1000;
  await h.waitFor(async () => {
    if (Date.now() < p0 + (PERIOD + 8) * 1000) return false;
    const q = `start=${new Date(p0).toISOString()}&end=${new Date(p0 + PERIOD * 1000).toISOString()}`;
    const r = await (await page.request.get(`${base}/api/cameras/${id}/motion?${q}`)).json();
    return r.intervals.length === 2;
  }, 120e3, "a period with both of the box's moments indexed");

  await page.goto(`${base}/#/camera/${id}?t=${encodeURIComponent(new Date(p0 + 1000).toISOString())}`);
  const canvas = page.locator(".timeline-canvas");
  await h.waitFor(async () => Number(await canvas.getAttribute("data-motion-marks")) > 0, 30e3, "the motion strip");

  // Region search: drag over the box's path (the lower left quarter).
  await page.locator("#btn-region").click();
  const overlay = page.locator("#region-overlay");
  await overlay.waitFor({ state: "visible" });
  const box = await page.locator("#recorded-video").boundingBox();
  const at = (fx, fy) => [box.x + box.width * fx, box.y + box.height * fy];
  await page.mouse.move(...at(0.02, 0.55));
  await page.mouse.down();
  await page.mouse.move(...at(0.25, 0.7), { steps: 5 });
  await page.mouse.move(...at(0.48, 0.85), { steps: 5 });
  await page.mouse.up();
  await h.waitFor(async () => Number(await page.locator("#motion-summary").getAttribute("data-hits")) >= 2,
    30e3, "hits in the region");
  assert.equal(await canvas.getAttribute("data-motion-region"), "true");
  await h.screenshot(page, "motion-region");

  // Next motion from before the first moment: its start, then the second's.
  await page.locator("#recorded-video").evaluate((v) => v.pause());
  for (const want of [5, 13]) {
    await page.locator("#btn-next-motion").click();
    const t = await h.waitFor(async () => {
      const p = await playhead(page);
      return Math.abs(p - (p0 + want * 1000)) <= 1500 ? p : false;
    }, 30e3, `the playhead at ${want} s into the period`);
    assert.ok(t > 0);
    await page.locator("#recorded-video").evaluate((v) => v.pause());
  }
  // A hit of the list jumps to its moment.
  const first = page.locator("#motion-hits .hit").first();
  const hitStart = Number(await first.getAttribute("data-start"));
  await first.click();
  await h.waitFor(async () => Math.abs((await playhead(page)) - hitStart) <= 1500, 30e3, "the playhead at the hit");

  // A region the box never crosses: no hits. Esc clears the region first.
  await page.keyboard.press("Escape");
  await page.locator("#motion-panel").waitFor({ state: "hidden" });
  await page.keyboard.press("r");
  await overlay.waitFor({ state: "visible" });
  await page.mouse.move(...at(0.55, 0.05));
  await page.mouse.down();
  await page.mouse.move(...at(0.95, 0.45), { steps: 5 });
  await page.mouse.up();
  await h.waitFor(async () => (await page.locator("#motion-summary").getAttribute("data-hits")) === "0",
    30e3, "no hits away from the box's path");
  await page.close();
});

test("the live grid marks the tile while the box moves", { timeout: 120e3 }, async () => {
  const page = await ctx.newPage(); // the same profile: still logged in
  await page.goto(`${base}/#/live`);
  const tile = page.locator(`.tile[data-camera-id="${id}"]`);
  await h.waitFor(async () => (await tile.getAttribute("data-motion")) === "true", 60e3, "the tile marked with motion");
  await h.screenshot(page, "motion-live-grid");
  await h.waitFor(async () => (await tile.getAttribute("data-motion")) === "false", 60e3, "the mark gone when the box stops");
  await page.close();
});
