// Sub-streams in Chromium: 16 test cameras with a 1080p main stream and a 640x360 sub-stream.
// The 4x4 grid asks only for sub-streams (which WebSockets are open, and the size their init
// announces), a tile forced to its main stream switches without a black picture, a clicked
// tile opens its camera on the main stream with the tile's last picture shown meanwhile, and
// the grid's bytes with sub-streams are compared with the same grid forced to main streams
// (the way it was before sub-streams), dropped frames read from getVideoPlaybackQuality().
// The camera form tests and adds a camera with both streams.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as h from "../lib/harness.js";

const CAMERAS = 16;
const MEASURE_MS = 20e3;
let base;
let cams;
const contexts = [];

async function browser() {
  const ctx = await h.newBrowser();
  contexts.push(ctx);
  return ctx;
}

before(async () => {
  cams = await h.startTestcam(["--mounts", String(CAMERAS), "--width", "1920", "--height", "1080",
    "--fps", "15", "--bitrate-kbps", "2000", "--sub-bitrate-kbps", "250"], "testcam-1080p");
  assert.equal(cams.subUrls.length, CAMERAS);
  const rec = new h.Recorder();
  await rec.init();
  for (let i = 0; i < CAMERAS; i++) await rec.addCamera(`Cam ${i + 1}`, cams.urls[i], cams.subUrls[i]);
  base = await rec.serve();
}, { timeout: 600e3 });

after(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  h.killAll();
});

/** Open live sockets of this test (those not closed), by camera id and stream. */
function openLive(since) {
  return h.traffic.sockets.slice(since).filter((s) => !s.closed && /\/api\/cameras\/\d+\/live\?/.test(s.url))
    .map((s) => {
      const u = new URL(s.url);
      return { ...s, camera: Number(u.pathname.split("/")[3]), stream: u.searchParams.get("stream") || "main",
        init: s.inits[s.inits.length - 1] || null, socket: s };
    });
}

/** Bytes the open live sockets receive over `ms`. */
async function bytesOver(since, ms) {
  const sockets = openLive(since).map((s) => s.socket);
  const at = sockets.map((s) => s.bytes);
  await new Promise((r) => setTimeout(r, ms));
  return sockets.reduce((sum, s, i) => sum + (s.bytes - at[i]), 0);
}

/** Frames the grid's <video>s decoded and dropped (getVideoPlaybackQuality). */
function playback(page) {
  return page.evaluate(() => {
    let total = 0;
    let dropped = 0;
    for (const v of document.querySelectorAll(".tile video")) {
      const q = v.getVideoPlaybackQuality();
      total += q.totalVideoFrames;
      dropped += q.droppedVideoFrames;
    }
    return { total, dropped };
  });
}

/** Until `stop()`: the darkest mean luminance the <video> at `selector` showed (sampled). */
async function watchPicture(page, selector) {
  await page.evaluate((sel) => {
    const v = document.querySelector(sel);
    const c = document.createElement("canvas");
    c.width = 64;
    c.height = 36;
    const g = c.getContext("2d", { willReadFrequently: true });
    window.__darkest = 255;
    window.__samples = 0;
    window.__watch = setInterval(() => {
      // A <video> with no picture to show draws nothing: what stays is black.
      g.fillStyle = "#000";
      g.fillRect(0, 0, c.width, c.height);
      g.drawImage(v, 0, 0, c.width, c.height);
      const d = g.getImageData(0, 0, c.width, c.height).data;
      let sum = 0;
      for (let i = 0; i < d.length; i += 4) sum += 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
      window.__darkest = Math.min(window.__darkest, sum / (d.length / 4));
      window.__samples++;
    }, 40);
  }, selector);
  return () => page.evaluate(() => {
    clearInterval(window.__watch);
    return { darkest: window.__darkest, samples: window.__samples };
  });
}

test("a 4x4 grid plays only sub-streams, and transfers a fraction of the main streams' bytes", { timeout: 600e3 }, async () => {
  const page = await (await browser()).newPage();
  const since = h.traffic.sockets.length;
  const requestsSince = h.traffic.requests.length;
  await h.login(page, base, h.ADMIN);
  await page.locator('button[data-stream-pref="auto"]').click();
  await page.locator('button[data-layout="16"]').click();
  await h.waitFor(async () => (await page.locator('.tile[data-state="live"]').count()) === CAMERAS,
    120e3, "16 live tiles");
  // Only sub-streams are open, and each announced the sub-stream's size.
  await h.waitFor(() => {
    const open = openLive(since);
    return open.length === CAMERAS && open.every((s) => s.init) && open;
  }, 30e3, "16 open live sockets with their init");
  const open = openLive(since);
  assert.deepEqual([...new Set(open.map((s) => s.stream))], ["sub"], open.map((s) => s.url).join("\n"));
  assert.deepEqual(open.map((s) => s.camera).sort((a, b) => a - b), [...Array(CAMERAS).keys()].map((i) => i + 1));
  for (const s of open) assert.deepEqual([s.init.width, s.init.height], [640, 360], s.url);
  for (let id = 1; id <= CAMERAS; id++) {
    assert.equal(await page.locator(`.tile[data-camera-id="${id}"]`).getAttribute("data-stream"), "sub");
  }
  await h.screenshot(page, "grid-16-sub");
  // The pictures shown while tiles connect come from the sub-streams too.
  const posters = h.traffic.requests.slice(requestsSince).filter((r) => /\/snapshot\.jpg\?/.test(r.url));
  assert.ok(posters.length > 0, "tiles showed a snapshot while connecting");
  assert.deepEqual(posters.filter((r) => !/stream=sub/.test(r.url)).map((r) => r.url), []);

  // After: the grid as it plays now.
  const q0 = await playback(page);
  const subBytes = await bytesOver(since, MEASURE_MS);
  const q1 = await playback(page);

  // Before: the same grid with every tile on its main stream (the viewer's force).
  await page.locator('button[data-stream-pref="main"]').click();
  await h.waitFor(() => {
    const o = openLive(since);
    return o.length === CAMERAS && o.every((s) => s.stream === "main" && s.init && s.init.width === 1920) && o;
  }, 120e3, "16 main streams open");
  await page.waitForTimeout(3000);
  const q2 = await playback(page);
  const mainBytes = await bytesOver(since, MEASURE_MS);
  const q3 = await playback(page);
  await h.screenshot(page, "grid-16-main");
  const ratio = subBytes / mainBytes;
  const rate = (b) => `${(b * 8 / (MEASURE_MS / 1000) / 1e6).toFixed(2)} Mbit/s`;
  const dropped = (a, b) => `${b.dropped - a.dropped} of ${b.total - a.total} frames dropped`;
  const report = `16 tiles over ${MEASURE_MS / 1000} s: main streams ${mainBytes} bytes (${rate(mainBytes)}, ` +
    `${dropped(q2, q3)}); sub-streams ${subBytes} bytes (${rate(subBytes)}, ${dropped(q0, q1)}); ` +
    `ratio ${ratio.toFixed(3)}`;
  console.log(`grid bandwidth: ${report}`);
  assert.ok(ratio <= 0.2, report);

  // Back to automatic: the tiles return to their sub-streams.
  await page.locator('button[data-stream-pref="auto"]').click();
  await h.waitFor(() => {
    const o = openLive(since);
    return o.length === CAMERAS && o.every((s) => s.stream === "sub") && o;
  }, 120e3, "16 sub-streams open again");
});

test("a tile switches to its main stream without a black picture, and a clicked tile opens on the main stream", { timeout: 300e3 }, async () => {
  const page = await (await browser()).newPage();
  const since = h.traffic.sockets.length;
  await h.login(page, base, h.GUARD);
  await page.locator('button[data-stream-pref="auto"]').click();
  await page.locator('button[data-layout="4"]').click();
  const tile = page.locator('.tile[data-camera-id="2"]');
  await h.waitFor(async () => (await tile.getAttribute("data-state")) === "live" &&
    (await tile.getAttribute("data-stream")) === "sub", 60e3, "tile 2 live on its sub-stream");
  assert.equal(await tile.getAttribute("data-stream-size"), "640x360");
  await page.waitForTimeout(1500);
  // Forcing the tile's main stream: the picture never goes black while it switches.
  const stop = await watchPicture(page, '.tile[data-camera-id="2"] video');
  await tile.hover();
  await tile.locator("button.tile-stream").click();
  await h.waitFor(async () => (await tile.getAttribute("data-stream")) === "main" &&
    (await tile.getAttribute("data-stream-size")) === "1920x1080", 60e3, "tile 2 on its main stream");
  await page.waitForTimeout(1500);
  const seen = await stop();
  assert.ok(seen.samples > 20, `sampled ${seen.samples} times`);
  assert.ok(seen.darkest > 30, `the picture went dark while switching: mean luminance ${seen.darkest.toFixed(1)}`);
  const open = openLive(since).filter((s) => s.camera === 2);
  assert.deepEqual(open.map((s) => s.stream), ["main"], "one socket for tile 2, its main stream");
  // The other tiles stayed on their sub-streams.
  assert.equal(await page.locator('.tile[data-camera-id="1"]').getAttribute("data-stream"), "sub");

  // A click on a tile opens its camera on the main stream, showing the tile's picture first.
  const before = h.traffic.sockets.length;
  await page.locator('.tile[data-camera-id="3"]').click();
  await page.waitForURL(/#\/camera\/3$/);
  const poster = await page.evaluate(() => document.querySelector("video.stage-video.live").getAttribute("poster"));
  assert.match(poster || "", /^data:image\/jpeg;base64,/, "the tile's last picture stands in");
  await h.waitFor(() => {
    const s = openLive(before).find((o) => o.camera === 3);
    return s && s.init && s;
  }, 60e3, "camera 3's live socket");
  const cam3 = openLive(before).find((o) => o.camera === 3);
  assert.equal(cam3.stream, "main");
  assert.deepEqual([cam3.init.width, cam3.init.height], [1920, 1080]);
  await h.waitFor(() => openLive(since).filter((s) => s.stream === "sub").length === 0, 10e3,
    "the grid's sub-streams closed");
  await h.screenshot(page, "camera-main-from-grid");
});

test("the camera form tests both streams and adds a camera with its sub-stream", { timeout: 180e3 }, async () => {
  const page = await (await browser()).newPage();
  await h.login(page, base, h.ADMIN);
  await page.locator("#nav a", { hasText: "Cameras" }).click();
  await page.locator("#cameras-table tbody tr").first().waitFor();
  await page.locator("#add-camera").click();
  await page.locator("#cam-name").fill("Both streams");
  await page.locator("#cam-url").fill(cams.urls[0]);
  await page.locator("#cam-sub-url").fill("rtsp://127.0.0.1:1/nothing");
  await page.locator("#test-camera").click();
  await page.locator("#test-sub-error").waitFor({ timeout: 30e3 });
  assert.equal(await page.locator("#test-sub-error").getAttribute("data-kind"), "unreachable");
  assert.equal(await page.locator("#test-resolution").innerText(), "1920×1080");
  await page.locator("#cam-sub-url").fill(cams.subUrls[0]);
  await page.locator("#test-camera").click();
  await page.locator("#test-sub-resolution").waitFor({ timeout: 30e3 });
  assert.equal(await page.locator("#test-sub-resolution").innerText(), "640×360");
  assert.match(await page.locator("#test-sub-codec").innerText(), /H264/);
  assert.match(await page.locator("#test-sub-fps").innerText(), /fps/);
  await h.screenshot(page, "camera-form-both-streams");
  await page.locator("dialog[open] button.primary").click();
  await page.locator("dialog[open]").waitFor({ state: "detached", timeout: 30e3 });
  const row = page.locator("#cameras-table tr", { hasText: "Both streams" });
  await row.waitFor({ timeout: 15e3 });
  await h.waitFor(async () => /sub 640×360/.test(await row.innerText()), 60e3, "the sub-stream's size in the list");
  const cameras = await (await page.request.get(`${base}/api/cameras`)).json();
  const added = cameras.find((c) => c.name === "Both streams");
  assert.equal(added.sub_url, cams.subUrls[0]);
  assert.equal(added.record_sub, true);
});

test("playback faster than 2x and the timeline's thumbnails read the sub-stream", { timeout: 180e3 }, async () => {
  const page = await (await browser()).newPage();
  await h.login(page, base, h.GUARD);
  const since = h.traffic.requests.length;
  const asked = (re) => h.traffic.requests.slice(since).filter((r) => re.test(r.url));
  await page.goto(`${base}/#/camera/1`);
  await page.locator(".timeline-canvas").waitFor();
  await page.locator("#btn-history").click();
  await h.waitFor(() => asked(/\/api\/cameras\/1\/view\.mp4\?/).length > 0, 30e3, "playback at 1x");
  assert.equal(asked(/\/api\/cameras\/1\/view\.mp4\?.*stream=sub/).length, 0, "1x plays the main stream");
  await page.locator("#speed").selectOption("4");
  await h.waitFor(() => asked(/\/api\/cameras\/1\/view\.mp4\?.*stream=sub/).length > 0, 30e3,
    "view.mp4 of the sub-stream at 4x");
  await h.waitFor(() => page.evaluate(() => /SUB/.test(document.querySelector(".stage-badge").textContent)), 15e3,
    "the badge says the sub-stream plays");
  const mainBefore = asked(/\/api\/cameras\/1\/view\.mp4\?/).filter((r) => !/stream=sub/.test(r.url)).length;
  await page.locator("#speed").selectOption("1");
  await h.waitFor(() => asked(/\/api\/cameras\/1\/view\.mp4\?/).filter((r) => !/stream=sub/.test(r.url)).length > mainBefore,
    30e3, "back to the main stream at 1x");
  // Hovering the recorded run asks for a thumbnail of the sub-stream.
  const box = await page.evaluate(() => {
    const c = document.querySelector(".timeline-canvas");
    const r = c.getBoundingClientRect();
    return { start: Number(c.dataset.viewStart), end: Number(c.dataset.viewEnd), x: r.left, y: r.top, w: r.width };
  });
  const x = (Date.now() - 20e3 - box.start) / (box.end - box.start) * box.w;
  await page.mouse.move(box.x + x, box.y + 44);
  await page.mouse.move(box.x + x + 3, box.y + 44);
  await h.waitFor(() => asked(/\/api\/cameras\/1\/snapshot\.jpg\?at=.*&stream=sub/).length > 0, 20e3,
    "a thumbnail from the sub-stream");
});

test("the streams pages talked to nothing but the recorder, without CSP violations or page errors", () => {
  const foreign = h.traffic.requests.filter((r) => !r.url.startsWith("data:") && !r.url.startsWith("blob:") &&
    !h.recorderOrigins.has(new URL(r.url).origin));
  assert.deepEqual(foreign, [], "requests to other origins");
  assert.deepEqual(h.traffic.cspViolations, [], "CSP violations");
  assert.deepEqual(h.traffic.pageErrors, [], "uncaught errors in pages");
});
