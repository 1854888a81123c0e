// End-to-end tests of the web UI in headless Chromium against the real recorder and real RTSP
// test cameras (H.264 and H.265). One recorder serves every test but the first-run one; the
// last test checks the traffic recorded across all of them (same origin only, CSP on HTML).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as h from "../lib/harness.js";

let base;
let h264;
let h265;
const contexts = [];
const HEVC_ID = 5;

async function browser() {
  const ctx = await h.newBrowser();
  contexts.push(ctx);
  return ctx;
}

before(async () => {
  [h264, h265] = await Promise.all([
    h.startTestcam(["--mounts", "5", "--width", "640", "--height", "360"], "testcam-h264"),
    h.startTestcam(["--codec", "h265", "--mounts", "1", "--width", "640", "--height", "360"], "testcam-h265"),
  ]);
  const rec = new h.Recorder();
  await rec.init();
  for (let i = 0; i < 4; i++) await rec.addCamera(`Cam ${i + 1}`, h264.urls[i]);
  await rec.addCamera("HEVC", h265.urls[0]);
  base = await rec.serve();
}, { timeout: 300e3 });

after(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  h.killAll();
});

/** Waits until the <video> at `selector` shows frames and its currentTime moves on. */
async function assertDecoding(page, selector, what, timeoutMs = 45e3) {
  const probe = () => page.evaluate((s) => {
    const v = document.querySelector(s);
    return v ? { w: v.videoWidth, t: v.currentTime, rs: v.readyState } : null;
  }, selector);
  const first = await h.waitFor(async () => { const p = await probe(); return p && p.w > 0 && p.rs >= 2 && p; },
    timeoutMs, `${what} to show video`);
  await h.waitFor(async () => { const p = await probe(); return p && p.t > first.t + 1; },
    20e3, `${what}: currentTime to advance past ${first.t + 1}`);
}

/** Seconds recorded in the current run of camera `id` (via the API, with the page's session). */
async function recordedSecs(page, id) {
  const now = Date.now();
  const q = `start=${new Date(now - 3600e3).toISOString()}&end=${new Date(now + 60e3).toISOString()}`;
  const r = await page.request.get(`${base}/api/cameras/${id}/recordings?${q}`);
  assert.equal(r.status(), 200);
  const runs = (await r.json()).runs;
  if (!runs.length) return { secs: 0, run: null };
  const run = runs[runs.length - 1];
  return { secs: (Date.parse(run.end) - Date.parse(run.start)) / 1000, run };
}

test("logs in through the form; the live grid decodes 4 cameras", { timeout: 180e3 }, async () => {
  const page = await (await browser()).newPage();
  await page.goto(`${base}/`);
  await page.locator("#login-username").fill(h.ADMIN.username);
  await page.locator("#login-password").fill("wrong password");
  await page.locator("#login-form button[type=submit]").click();
  await page.locator("#login-error", { hasText: "Wrong username or password" }).waitFor({ timeout: 10e3 });
  await h.login(page, base, h.ADMIN);
  assert.match(await page.locator("#who").innerText(), /admin/);
  await page.locator('button[data-layout="4"]').click();
  for (let id = 1; id <= 4; id++) {
    await assertDecoding(page, `.tile[data-camera-id="${id}"] video`, `tile of camera ${id}`);
  }
  for (let id = 1; id <= 4; id++) {
    assert.equal(await page.locator(`.tile[data-camera-id="${id}"]`).getAttribute("data-state"), "live");
  }
  // The grid asked for what this browser decodes and for the tile's size.
  const ws = h.traffic.websockets.filter((u) => u.includes("/api/cameras/1/live"));
  assert.ok(ws.length > 0, "a WebSocket for camera 1");
  assert.match(ws[0], /codecs=h264(&|$)/);
  assert.match(ws[0], /width=\d+&height=\d+/);
  await h.screenshot(page, "live-grid");
});

test("the timeline shows the recorded run and plays from a clicked time", { timeout: 240e3 }, async () => {
  const page = await (await browser()).newPage();
  await h.login(page, base, h.ADMIN);
  await h.waitFor(async () => (await recordedSecs(page, 1)).secs >= 40, 150e3, "40 s recorded on camera 1");
  await page.goto(`${base}/#/camera/1`);
  await page.locator(".timeline-canvas").waitFor();
  await page.locator("#btn-history").click();
  for (let i = 0; i < 4; i++) await page.locator('button[aria-label="Zoom in (+)"]').click(); // 1 h -> 3.75 min
  await page.waitForTimeout(3600); // the timeline follows the playhead again after 3 s
  const { run } = await recordedSecs(page, 1);
  const runStart = Date.parse(run.start);
  const view = await page.evaluate(() => {
    const c = document.querySelector(".timeline-canvas");
    const r = c.getBoundingClientRect();
    return { start: Number(c.dataset.viewStart), end: Number(c.dataset.viewEnd), x: r.left, y: r.top, w: r.width };
  });
  const xOf = (t) => (t - view.start) / (view.end - view.start) * view.w;
  // A time 10 s into the run (visible: the run started less than a few minutes ago).
  const target = runStart + 10e3;
  const x = Math.round(xOf(target));
  assert.ok(x > 0 && x < view.w, `target ${new Date(target).toISOString()} in view (x=${x})`);
  const colour = (px) => page.evaluate(([px]) => {
    const c = document.querySelector(".timeline-canvas");
    const d = c.getContext("2d").getImageData(Math.round(px * devicePixelRatio), Math.round(44 * devicePixelRatio), 1, 1).data;
    return [d[0], d[1], d[2]];
  }, [px]);
  const isRun = ([r, g, b]) => b > 180 && r < 120; // the run bars are blue
  assert.ok(isRun(await colour(x)), `run drawn at x=${x}: ${await colour(x)}`);
  const gapX = Math.round(xOf(runStart - 20e3));
  if (gapX > 2) assert.ok(!isRun(await colour(gapX)), `gap drawn plain before the run: ${await colour(gapX)}`);

  const clicked = view.start + x / view.w * (view.end - view.start);
  await page.mouse.click(view.x + x, view.y + 44);
  await assertDecoding(page, "#recorded-video", "recorded video");
  const shown = await page.evaluate(() => {
    const v = document.querySelector("#recorded-video");
    return { t: Number(document.querySelector("#play-time").dataset.t), pos: v.currentTime };
  });
  // The clock shows the recorder's wall time: the clicked time plus what has played since.
  assert.ok(Math.abs(shown.t - (clicked + shown.pos * 1000)) < 1500,
    `shown ${new Date(shown.t).toISOString()} vs clicked ${new Date(clicked).toISOString()} + ${shown.pos} s`);
  assert.ok(shown.t - clicked > -2000 && shown.t - clicked < 15000, "shown time within seconds of the click");
  const views = h.traffic.requests.filter((r) => r.url.includes("/api/cameras/1/view.mp4"));
  assert.ok(views.length > 0, "played through view.mp4");

  // Hovering the run shows a key-frame thumbnail from snapshot.jpg.
  await page.mouse.move(view.x + x + 3, view.y + 44);
  await page.mouse.move(view.x + x + 6, view.y + 44);
  await h.waitFor(() => page.evaluate(() => {
    const img = document.querySelector(".timeline-hover img.thumb");
    return img && !img.hidden && img.complete && img.naturalWidth > 0 && img.naturalWidth <= 160;
  }), 20e3, "a hover thumbnail");
  assert.ok(h.traffic.requests.some((r) => /\/api\/cameras\/1\/snapshot\.jpg\?at=.*&width=160/.test(r.url)));
  await h.screenshot(page, "timeline");

  // A click in the gap before the run snaps to the run's start and says so.
  if (gapX > 2) {
    await page.mouse.click(view.x + gapX, view.y + 44);
    await page.locator(".toast", { hasText: "No recording at" }).waitFor({ timeout: 10e3 });
    await h.waitFor(async () => {
      const t = Number(await page.locator("#play-time").getAttribute("data-t"));
      return Math.abs(t - runStart) < 4000;
    }, 20e3, "the playhead at the run's start after clicking the gap");
  }
});

test("an H.265 camera plays recorded video in Chromium through the transcoder", { timeout: 240e3 }, async () => {
  const page = await (await browser()).newPage();
  await h.login(page, base, h.ADMIN);
  const hevc = await page.evaluate(() => MediaSource.isTypeSupported('video/mp4; codecs="hvc1.1.6.L93.B0"'));
  await h.waitFor(async () => (await recordedSecs(page, HEVC_ID)).secs >= 40, 150e3, "40 s recorded on the H.265 camera");
  // The camera's details arrive after the click on History (as on a loaded recorder): the
  // choice stands, the page does not fall back to live when they arrive.
  let detailsServed = false;
  await page.route((url) => url.pathname === `/api/cameras/${HEVC_ID}`, async (route) => {
    await new Promise((r) => setTimeout(r, 1500));
    detailsServed = true;
    await route.continue();
  });
  await page.goto(`${base}/#/camera/${HEVC_ID}`);
  await page.locator("#btn-history").click();
  assert.equal(detailsServed, false, "History clicked before the camera's details arrived");
  await h.waitFor(async () => detailsServed, 10e3, "the camera's details");
  await assertDecoding(page, "#recorded-video", "recorded H.265 video", 60e3);
  if (!hevc) {
    assert.ok(h.traffic.requests.some((r) => r.url.includes(`/api/cameras/${HEVC_ID}/view.mp4`) && r.url.includes("transcode=h264")),
      "recorded H.265 asked for transcode=h264");
  }
  const t = Number(await page.locator("#play-time").getAttribute("data-t"));
  assert.ok(Math.abs(Date.now() - 30e3 - t) < 30e3, `history starts about 30 s ago (${new Date(t).toISOString()})`);
  await h.screenshot(page, "hevc-playback");
});

test("an H.265 camera plays live in Chromium through the transcoder", { timeout: 180e3 }, async () => {
  const page = await (await browser()).newPage();
  await h.login(page, base, h.ADMIN);
  const hevc = await page.evaluate(() => MediaSource.isTypeSupported('video/mp4; codecs="hvc1.1.6.L93.B0"'));
  await page.goto(`${base}/#/camera/${HEVC_ID}`);
  await assertDecoding(page, "video.live", "live H.265 camera", 60e3);
  const ws = h.traffic.websockets.filter((u) => u.includes(`/api/cameras/${HEVC_ID}/live`));
  assert.ok(ws.length > 0);
  if (!hevc) assert.match(ws[ws.length - 1], /codecs=h264(&|$)/, "asks for H.264 when HEVC is not decodable");
  await h.screenshot(page, "hevc-live");
});

test("an admin adds a camera through the form and it starts recording", { timeout: 180e3 }, async () => {
  const page = await (await browser()).newPage();
  await h.login(page, base, h.ADMIN);
  await page.locator("#nav a", { hasText: "Cameras" }).click();
  await page.locator("#cameras-table tbody tr").first().waitFor();
  await page.locator("#add-camera").click();
  await page.locator("#cam-name").fill("Added camera");
  // A port nothing listens on: the exact failure is shown.
  await page.locator("#cam-url").fill("rtsp://127.0.0.1:1/nothing");
  await page.locator("#test-camera").click();
  await page.locator("#test-error").waitFor({ timeout: 30e3 });
  assert.equal(await page.locator("#test-error").getAttribute("data-kind"), "unreachable");
  await page.locator("#cam-url").fill(h264.urls[4]);
  await page.locator("#test-camera").click();
  await page.locator("#test-codec").waitFor({ timeout: 30e3 });
  assert.match(await page.locator("#test-codec").innerText(), /H264/);
  assert.equal(await page.locator("#test-resolution").innerText(), "640×360");
  await page.locator("dialog[open] button.primary").click();
  await page.locator("dialog[open]").waitFor({ state: "detached", timeout: 30e3 });
  const row = page.locator("#cameras-table tr", { hasText: "Added camera" });
  await row.waitFor({ timeout: 15e3 });
  await h.waitFor(async () => (await row.getAttribute("data-status")) === "recording", 60e3, "the added camera to record");
  await h.screenshot(page, "cameras-admin");

  await page.locator("#nav a", { hasText: "Status" }).click();
  await page.locator("#status-version").waitFor({ timeout: 15e3 });
  assert.match(await page.locator("#status-version").innerText(), /\d+\.\d+/);
  await h.screenshot(page, "status");
});

test("a guard sees no admin page and the API refuses admin requests", { timeout: 120e3 }, async () => {
  const page = await (await browser()).newPage();
  await h.login(page, base, h.GUARD);
  const nav = await page.locator("#nav").innerText();
  assert.match(nav, /Live/);
  assert.doesNotMatch(nav, /Cameras|Users|Status/);
  await page.goto(`${base}/#/cameras`);
  await page.waitForFunction(() => location.hash === "#/live");
  assert.equal(await page.locator("#cameras-table").count(), 0);
  await page.locator(".tile").first().waitFor();
  const me = await (await page.request.get(`${base}/api/me`)).json();
  assert.equal(me.role, "guard");
  const headers = { "X-CSRF-Token": me.csrf_token };
  const add = await page.request.post(`${base}/api/cameras`, { headers, data: { name: "x", url: h264.urls[0] } });
  assert.equal(add.status(), 403);
  const probe = await page.request.post(`${base}/api/cameras/test`, { headers, data: { url: h264.urls[0] } });
  assert.equal(probe.status(), 403);
  assert.equal((await page.request.get(`${base}/api/users`)).status(), 403);
});

test("first run: the setup form creates the first administrator", { timeout: 120e3 }, async () => {
  const rec = new h.Recorder();
  await rec.init([]);
  const fresh = await rec.serve();
  const page = await (await browser()).newPage();
  await page.goto(`${fresh}/`);
  await page.locator("#setup-form").waitFor({ timeout: 15e3 });
  await page.locator("#setup-username").fill("chief");
  await page.locator("#setup-password").fill("first-admin-pass");
  await page.locator("#setup-password2").fill("first-admin-pass-typo");
  await page.locator("#setup-form button[type=submit]").click();
  await page.locator("#setup-error", { hasText: "differ" }).waitFor();
  await page.locator("#setup-password2").fill("first-admin-pass");
  await page.locator("#setup-form button[type=submit]").click();
  await page.locator("#logout").waitFor({ timeout: 15e3 });
  assert.match(await page.locator("#who").innerText(), /chief/);
  assert.match(await page.locator("#nav").innerText(), /Cameras/);
  rec.child.kill("SIGKILL");
});

test("the browser talked to nothing but the recorder; every HTML response has the CSP", () => {
  assert.ok(h.traffic.requests.length > 20, "requests were recorded");
  const foreign = h.traffic.requests.filter((r) => {
    if (r.url.startsWith("data:") || r.url.startsWith("blob:")) return false;
    return !h.recorderOrigins.has(new URL(r.url).origin);
  });
  assert.deepEqual(foreign, [], "requests to other origins");
  const badWs = h.traffic.websockets.filter((u) => {
    const url = new URL(u);
    return url.protocol !== "ws:" || !h.recorderOrigins.has(`http://${url.host}`);
  });
  assert.deepEqual(badWs, [], "WebSockets to other origins");
  assert.ok(h.traffic.documents.length > 0);
  for (const d of h.traffic.documents) assert.equal(d.csp, h.CSP, `CSP of ${d.url}`);
  assert.deepEqual(h.traffic.cspViolations, [], "CSP violations");
  assert.deepEqual(h.traffic.pageErrors, [], "uncaught errors in pages");
});
