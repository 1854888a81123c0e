// Evidence in the browser: an evidence user selects a range on a camera's timeline (drag,
// handles, Shift+drag, [ ] keys), exports it through the dialog and verifies the downloaded
// bundle with `nvr verify`, the recorder's key pinned; places a hold that is drawn on the
// timeline and released on the Evidence page; reads and filters the audit log; a guard sees
// none of it. Its own recorder closes segments every 4 s, so sealed (exportable) video exists
// within seconds.

import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import * as h from "../lib/harness.js";

let base;
let tmp;
// The recorder's signing key fingerprint, as its administrator reads it (`nvr key show`).
let key;
const contexts = [];
const CASE = "2026/0042";
const made = { exportId: null, holdId: null };

let lastPage = null;
async function newPage() {
  const ctx = await h.newBrowser();
  contexts.push(ctx);
  lastPage = await ctx.newPage();
  return lastPage;
}

// The last state of each test's page, kept with the logs (the directory is kept on failure).
afterEach(async (t) => {
  if (!lastPage) return;
  await lastPage.screenshot({ path: path.join(h.LOG_DIR, `${t.name.slice(0, 40).replace(/\W+/g, "-")}.png`) }).catch(() => {});
  lastPage = null;
});

before(async () => {
  const cam = await h.startTestcam(["--mounts", "2", "--width", "320", "--height", "180"], "testcam-evidence");
  const rec = new h.Recorder();
  await rec.init([h.ADMIN, h.GUARD, h.OFFICER]);
  await rec.addCamera("Gate", cam.urls[0]);
  await rec.addCamera("Yard", cam.urls[1]);
  base = await rec.serve(["--segment-duration-secs", "4"]);
  tmp = path.dirname(rec.dir);
  const shown = await h.run(["key", "show", "--data-dir", rec.dir]);
  key = /^current signing key: (\S+)/m.exec(shown.out)[1];
}, { timeout: 300e3 });

after(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  h.killAll();
});

/** The current run of camera `id` once it holds `secs` seconds in at least 4 segments. */
async function waitRun(page, id, secs) {
  return h.waitFor(async () => {
    const now = Date.now();
    const q = `start=${new Date(now - 3600e3).toISOString()}&end=${new Date(now + 60e3).toISOString()}`;
    const r = await page.request.get(`${base}/api/cameras/${id}/recordings?${q}`);
    const runs = (await r.json()).runs;
    const run = runs[runs.length - 1];
    if (!run) return null;
    const start = Date.parse(run.start);
    return (Date.parse(run.end) - start) / 1000 >= secs && run.segments >= 4 ? { start, end: Date.parse(run.end) } : null;
  }, 120e3, `${secs} s recorded on camera ${id}`);
}

/** The timeline's visible range and box on screen. */
function view(page) {
  return page.evaluate(() => {
    const c = document.querySelector(".timeline-canvas");
    const r = c.getBoundingClientRect();
    return { start: Number(c.dataset.viewStart), end: Number(c.dataset.viewEnd), x: r.left, y: r.top, w: r.width };
  });
}
const xOf = (v, t) => (t - v.start) / (v.end - v.start) * v.w;
const msPerPx = (v) => (v.end - v.start) / v.w;

/** Zooms the timeline to 3.75 min and waits until it shows [from, to] again. */
async function zoomOn(page, from, to) {
  await page.locator(".timeline-canvas").waitFor();
  for (let i = 0; i < 4; i++) await page.locator('button[aria-label="Zoom in (+)"]').click();
  return h.waitFor(async () => {
    const v = await view(page);
    return v.end - v.start < 300e3 && v.start < from && v.end > to ? v : null;
  }, 15e3, "the timeline to show the run");
}

/** The colour of the timeline canvas at time t, height y (view and pixel read together). */
function colourAt(page, t, y) {
  return page.evaluate(([t, y]) => {
    const c = document.querySelector(".timeline-canvas");
    const s = Number(c.dataset.viewStart);
    const x = (t - s) / (Number(c.dataset.viewEnd) - s) * c.clientWidth;
    const d = c.getContext("2d").getImageData(Math.round(x * devicePixelRatio), Math.round(y * devicePixelRatio), 1, 1).data;
    return [d[0], d[1], d[2]];
  }, [t, y]);
}
const HOLD_Y = 60; // the hold band: 56..64 of the 72 px canvas
const isAmber = ([r, g, b]) => r > 170 && g > 110 && b < 120;

const edge = async (page, which) => Number(await page.locator(`#range-${which}`).getAttribute("data-t"));
const playTime = async (page) => Number(await page.locator("#play-time").getAttribute("data-t"));

/** Waits until the paused recorded video shows the frame at wall time t (±1 s). */
async function assertShowsFrame(page, t, what) {
  await h.waitFor(async () => {
    const s = await page.evaluate(() => {
      const v = document.querySelector("#recorded-video");
      return { mode: document.querySelector(".stage").dataset.mode, rs: v.readyState, w: v.videoWidth, paused: v.paused };
    });
    return s.mode === "playback" && s.rs >= 2 && s.w > 0 && s.paused && Math.abs(await playTime(page) - t) < 1000;
  }, 30e3, `${what}: the paused video at ${new Date(t).toISOString()}`);
}

/** Drags a range handle's grip to time t. */
async function dragHandle(page, which, t) {
  const box = await page.locator(`#range-${which} .tl-handle-grip`).boundingBox();
  const v = await view(page);
  const y = box.y + box.height / 2;
  await page.mouse.move(box.x + box.width / 2, y);
  await page.mouse.down();
  await page.mouse.move(v.x + xOf(v, t), y, { steps: 6 });
  await page.mouse.up();
}

test("an evidence user selects a range by dragging, exports it, and the downloaded bundle verifies", { timeout: 150e3 }, async () => {
  const page = await newPage();
  await h.login(page, base, h.OFFICER);
  const nav = await page.locator("#nav").innerText();
  assert.match(nav, /Evidence/);
  assert.match(nav, /Audit/);
  assert.doesNotMatch(nav, /Cameras|Users|Status/);
  const run = await waitRun(page, 1, 20);
  await page.goto(`${base}/#/camera/1`);
  let v = await zoomOn(page, run.start, Date.now() - 2000);

  // Open the range bar and drag across the run: the handles land where the drag started and ended.
  await page.locator("#btn-range").click();
  await page.locator("#range-bar").waitFor();
  assert.equal(await page.locator("#btn-export").isDisabled(), true, "no export without a range");
  v = await view(page); // the bar took room from the video: the timeline moved up
  const a = run.start + 3000;
  const b = run.start + 16000;
  const y = v.y + 44;
  await page.mouse.move(v.x + xOf(v, a), y);
  await page.mouse.down();
  await page.mouse.move(v.x + xOf(v, (a + b) / 2), y, { steps: 4 });
  await page.mouse.move(v.x + xOf(v, b), y, { steps: 4 });
  await page.mouse.up();
  const tol = 2 * msPerPx(v);
  assert.ok(Math.abs(await edge(page, "in") - a) < tol, `IN at ${new Date(await edge(page, "in")).toISOString()}, dragged from ${new Date(a).toISOString()}`);
  assert.ok(Math.abs(await edge(page, "out") - b) < tol, "OUT where the drag ended");
  assert.match(await page.locator("#range-in").innerText(), /IN\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/);
  assert.match(await page.locator("#range-out").innerText(), /OUT\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/);
  assert.match(await page.locator("#range-in").getAttribute("title"), /UTC/);
  // The drag's moving edge (OUT) is shown, paused.
  await assertShowsFrame(page, await edge(page, "out"), "after the drag");

  // Dragging the OUT handle seeks the video to that edge.
  v = await view(page);
  await dragHandle(page, "out", run.start + 13000);
  const out = await edge(page, "out");
  assert.ok(Math.abs(out - (run.start + 13000)) < tol, "OUT moved with its handle");
  await assertShowsFrame(page, out, "after dragging OUT");

  // The handles cannot cross: IN pushed a minute later stops a second before OUT.
  await page.locator("#range-in").focus();
  await page.keyboard.press("PageUp");
  assert.equal(await edge(page, "in"), out - 1000, "IN stops 1 s before OUT");
  await page.keyboard.press("Shift+ArrowLeft");
  const inT = await edge(page, "in");
  assert.equal(inT, out - 11000);
  await assertShowsFrame(page, inT, "after moving IN with the keyboard");
  assert.equal(await page.locator("#range-duration").getAttribute("data-ms"), "11000");

  // The export dialog: this camera preselected, case and reason, the range and its length.
  await page.locator("#btn-export").click();
  const dlg = page.locator("#export-dialog");
  await dlg.waitFor();
  assert.equal(await dlg.locator('input[data-camera-id="1"]').isChecked(), true);
  assert.equal(await dlg.locator('input[data-camera-id="2"]').isChecked(), false);
  assert.equal(await dlg.locator("#export-duration").innerText(), "11 s");
  await dlg.locator("#export-case").fill(CASE);
  await dlg.locator("#export-reason").fill("Fight at the gate");
  await h.screenshot(page, "export-dialog");
  await dlg.locator("#export-submit").click();
  await dlg.locator("#export-state").waitFor({ timeout: 10e3 });
  await dlg.locator('#export-state[data-state="ready"]').waitFor({ timeout: 60e3 });
  const sha = (await dlg.locator("#export-sha256").innerText()).trim();
  // The recorder verified its own bundle before offering it.
  assert.equal(await dlg.locator("#export-verified").getAttribute("data-verified"), "true");
  assert.match(sha, /^[0-9a-f]{64}$/);
  await h.screenshot(page, "export-ready");
  const [download] = await Promise.all([page.waitForEvent("download"), dlg.locator("#export-download").click()]);
  assert.match(download.suggestedFilename(), /^nvr-export-\d+\.zip$/);
  made.exportId = Number(/(\d+)/.exec(download.suggestedFilename())[1]);
  const file = path.join(tmp, download.suggestedFilename());
  await download.saveAs(file);
  assert.equal(createHash("sha256").update(readFileSync(file)).digest("hex"), sha, "the bundle's SHA-256 as shown");
  const verified = await h.run(["verify", "--expect-key", key, file]);
  assert.equal(verified.code, 0, `nvr verify:\n${verified.out}`);
  assert.match(verified.out, /VALID/);
  await dlg.locator("#export-cancel").click();
  await dlg.waitFor({ state: "detached" });

  // A range without recordings: the failure is shown in the dialog.
  const empty = new Date(run.start - 2 * 3600e3);
  const local = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}T${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}:00`;
  await page.locator("#range-in-input").fill(local(empty));
  await page.locator("#range-out-input").fill(local(new Date(empty.getTime() + 60e3)));
  await h.waitFor(async () => (await page.locator("#range-duration").getAttribute("data-ms")) === "60000", 5e3, "the typed range");
  await page.locator("#btn-export").click();
  await dlg.locator("#export-reason").fill("Nothing there");
  await dlg.locator("#export-submit").click();
  const failure = await h.waitFor(async () => {
    const texts = await dlg.locator("#export-error, .export-error").allInnerTexts();
    return texts.find((t) => t.trim()) || null;
  }, 30e3, "the export's error in the dialog");
  assert.match(failure, /recordings/i);
  await page.keyboard.press("Escape");
  await dlg.waitFor({ state: "detached" });

  // The Evidence page lists the export under its case: ready, with its hash.
  await page.locator("#nav a", { hasText: "Evidence" }).click();
  const row = page.locator(`.case-group[data-case="${CASE}"] tr[data-export-id="${made.exportId}"]`);
  await row.waitFor({ timeout: 10e3 });
  assert.equal(await row.getAttribute("data-state"), "ready");
  assert.match(await row.innerText(), new RegExp(sha));
  assert.match(await row.innerText(), /Fight at the gate/);
  assert.match(await row.innerText(), /nvr verify/);
});

test("a hold made from a timeline selection is drawn on the timeline and released on the Evidence page", { timeout: 120e3 }, async () => {
  const page = await newPage();
  await h.login(page, base, h.OFFICER);
  const run = await waitRun(page, 1, 20);
  await page.goto(`${base}/#/camera/1`);
  let v = await zoomOn(page, run.start, Date.now() - 2000);
  assert.equal(await page.locator("#range-bar").isVisible(), false);

  // Shift+drag selects even with the range bar closed (and opens it).
  const y = v.y + 44;
  await page.keyboard.down("Shift");
  await page.mouse.move(v.x + xOf(v, run.start + 4000), y);
  await page.mouse.down();
  await page.mouse.move(v.x + xOf(v, run.start + 12000), y, { steps: 6 });
  await page.mouse.up();
  await page.keyboard.up("Shift");
  await page.locator("#range-bar").waitFor();
  await page.locator("#range-out").waitFor();
  // [ marks IN at the playhead: click a time (seeks), pause, press [.
  v = await view(page); // the bar took room from the video: the timeline moved up
  await page.mouse.click(v.x + xOf(v, run.start + 7000), v.y + 44);
  await h.waitFor(async () => Math.abs(await playTime(page) - (run.start + 7000)) < 3000, 20e3, "the seek");
  await page.locator("#recorded-video").evaluate((e) => e.pause());
  await page.locator(".timeline-canvas").focus();
  await page.keyboard.press("[");
  const inT = await edge(page, "in");
  assert.ok(Math.abs(inT - await playTime(page)) < 1000, "IN marked at the playhead");
  const outT = await edge(page, "out");
  assert.ok(Math.abs(outT - (run.start + 12000)) < 2 * msPerPx(v), "OUT kept");

  await page.locator("#btn-hold").click();
  const dlg = page.locator("#hold-dialog");
  await dlg.locator("#hold-case").fill(CASE);
  await dlg.locator("#hold-reason").fill("Keep for court");
  await dlg.locator("#hold-submit").click();
  await dlg.waitFor({ state: "detached", timeout: 10e3 });
  const holds = await (await page.request.get(`${base}/api/holds`)).json();
  const hold = holds.find((x) => x.reason === "Keep for court" && x.camera === 1);
  assert.ok(hold, `the hold exists: ${JSON.stringify(holds)}`);
  made.holdId = hold.id;
  assert.ok(Math.abs(Date.parse(hold.start) - inT) < 2 && Math.abs(Date.parse(hold.end) - outT) < 2, "the hold covers the selection");

  // Drawn on the timeline: listed on the canvas and amber in the band.
  await h.waitFor(async () => (await page.locator(".timeline-canvas").getAttribute("data-holds")).split(",").includes(String(hold.id)),
    10e3, "the hold on the timeline");
  const mid = (inT + outT) / 2;
  const inside = await colourAt(page, mid, HOLD_Y);
  assert.ok(isAmber(inside), `hold band at its range: ${inside}`);
  const outside = await colourAt(page, run.start + 1000, HOLD_Y);
  assert.ok(!isAmber(outside), `no band outside the hold: ${outside}`);
  await h.screenshot(page, "hold-on-timeline");

  // Listed on the Evidence page; releasing it (confirmed) removes it.
  await page.locator("#nav a", { hasText: "Evidence" }).click();
  const row = page.locator(`#holds-table tr[data-hold-id="${hold.id}"]`);
  await row.waitFor({ timeout: 10e3 });
  assert.match(await row.innerText(), /Keep for court/);
  assert.match(await row.innerText(), new RegExp(CASE));
  await h.screenshot(page, "evidence");
  await row.locator("button", { hasText: "Release" }).click();
  await page.locator("dialog[open] button.danger").click();
  await row.waitFor({ state: "detached", timeout: 10e3 });
  const after = await (await page.request.get(`${base}/api/holds`)).json();
  assert.ok(!after.some((x) => x.id === hold.id), "released: no longer active");

  // And it is gone from the timeline.
  await page.goto(`${base}/#/camera/1?t=${encodeURIComponent(new Date(mid).toISOString())}`);
  await zoomOn(page, inT, outT);
  await page.waitForTimeout(500);
  assert.ok(!(await page.locator(".timeline-canvas").getAttribute("data-holds")).split(",").includes(String(hold.id)));
  const released = await colourAt(page, mid, HOLD_Y);
  assert.ok(!isAmber(released), `no band after the release: ${released}`);
});

test("the audit page lists the user's export and hold entries and filters by action", { timeout: 60e3 }, async () => {
  assert.ok(made.exportId && made.holdId, "the export and hold tests ran first");
  const page = await newPage();
  await h.login(page, base, h.OFFICER);
  await page.locator("#nav a", { hasText: "Audit" }).click();
  await page.locator("#audit-filters").waitFor();
  await page.locator("#audit-actor").fill(h.OFFICER.username);
  await page.locator("#audit-filters button[type=submit]").click();
  await page.waitForFunction(() => location.hash.includes("actor=officer"));
  await page.locator("#audit-table tbody tr").first().waitFor({ timeout: 10e3 });
  const rows = await page.locator("#audit-table tbody tr").evaluateAll((trs) => trs.map((tr) => ({
    action: tr.dataset.action, actor: tr.children[1].innerText, text: tr.innerText,
    utc: tr.querySelector("time").title })));
  assert.ok(rows.every((r) => r.actor === h.OFFICER.username), "only the officer's entries");
  for (const a of ["export", "export_download", "hold", "hold_release"]) {
    assert.ok(rows.some((r) => r.action === a), `an entry for ${a}`);
  }
  assert.ok(rows.find((r) => r.action === "export").text.includes(`${made.exportId}`), "the export entry names the export");
  assert.match(rows[0].utc, /UTC$/);

  await page.locator("#audit-action").selectOption("hold");
  await page.locator("#audit-filters button[type=submit]").click();
  await page.waitForFunction(() => location.hash.includes("action=hold"));
  await page.locator('#audit-table tbody tr[data-action="hold"]').first().waitFor({ timeout: 10e3 });
  const actions = await page.locator("#audit-table tbody tr").evaluateAll((trs) => trs.map((tr) => tr.dataset.action));
  assert.ok(actions.length >= 1 && actions.every((a) => a === "hold"), `only hold entries: ${actions}`);
  assert.match(await page.locator("#audit-table tbody tr").first().innerText(), /Keep for court/);
  await h.screenshot(page, "audit");

  // Paging with before_id: the next page holds older entries.
  await page.goto(`${base}/#/audit?actor=officer&limit=3`);
  await h.waitFor(async () => (await page.locator("#audit-table tbody tr").count()) === 3, 10e3, "a page of 3");
  const first = await page.locator("#audit-table tbody tr").evaluateAll((trs) => trs.map((tr) => Number(tr.dataset.auditId)));
  await page.locator("#audit-older").click();
  await page.waitForFunction(() => location.hash.includes("before_id="));
  await h.waitFor(async () => {
    const ids = await page.locator("#audit-table tbody tr").evaluateAll((trs) => trs.map((tr) => Number(tr.dataset.auditId)));
    return ids.length > 0 && Math.max(...ids) < Math.min(...first);
  }, 10e3, "older entries on the next page");
  assert.equal(await page.locator("#audit-newest").isVisible(), true);
});

test("a guard sees no evidence navigation, range or data; the API refuses with 403", { timeout: 60e3 }, async () => {
  const page = await newPage();
  await h.login(page, base, h.GUARD);
  const nav = await page.locator("#nav").innerText();
  assert.doesNotMatch(nav, /Evidence|Audit/);
  for (const route of ["evidence", "audit"]) {
    await page.goto(`${base}/#/${route}`);
    await page.waitForFunction(() => location.hash === "#/live");
    await page.locator(".tile").first().waitFor();
    assert.equal(await page.locator("#exports, #holds-table, #audit-table").count(), 0, `no data on #/${route}`);
  }
  const me = await (await page.request.get(`${base}/api/me`)).json();
  for (const p of ["/api/exports", "/api/holds", "/api/audit", `/api/exports/${made.exportId || 1}/bundle.zip`]) {
    assert.equal((await page.request.get(`${base}${p}`)).status(), 403, `GET ${p}`);
  }
  const now = Date.now();
  const exp = await page.request.post(`${base}/api/exports`, { headers: { "X-CSRF-Token": me.csrf_token },
    data: { cameras: [1], start: new Date(now - 60e3).toISOString(), end: new Date(now).toISOString(), case: "", reason: "x" } });
  assert.equal(exp.status(), 403);
  // The camera page offers no range: no button, Shift+drag pans, [ does nothing.
  await page.goto(`${base}/#/camera/1`);
  const v = await zoomOn(page, Date.now() - 60e3, Date.now() - 2000);
  assert.equal(await page.locator("#btn-range").count(), 0);
  await page.keyboard.down("Shift");
  await page.mouse.move(v.x + v.w * 0.3, v.y + 44);
  await page.mouse.down();
  await page.mouse.move(v.x + v.w * 0.5, v.y + 44, { steps: 4 });
  await page.mouse.up();
  await page.keyboard.up("Shift");
  await page.locator(".timeline-canvas").focus();
  await page.keyboard.press("[");
  assert.equal(await page.locator("#range-bar, .tl-handle").count(), 0);
});

test("evidence pages talked to nothing but the recorder, with the CSP and no page errors", () => {
  assert.ok(h.traffic.requests.length > 20, "requests were recorded");
  const foreign = h.traffic.requests.filter((r) => {
    if (r.url.startsWith("data:") || r.url.startsWith("blob:")) return false;
    return !h.recorderOrigins.has(new URL(r.url).origin);
  });
  assert.deepEqual(foreign, [], "requests to other origins");
  for (const d of h.traffic.documents) assert.equal(d.csp, h.CSP, `CSP of ${d.url}`);
  assert.deepEqual(h.traffic.cspViolations, [], "CSP violations");
  assert.deepEqual(h.traffic.pageErrors, [], "uncaught errors in pages");
});
