// The bundle's own player, as an examiner without nvr uses it: a real 2-camera export made by
// `nvr export`, unpacked, player.html opened from file:// in Chromium with every network
// request blocked (and recorded: none may happen), the unpacked files picked. It must check
// every file and the Ed25519 signature (dataset.verified "ok"), show the signing key's
// fingerprint as `nvr key show` prints it, and play both cameras in sync with the recording
// time drawn over the picture; with one byte of the MP4 flipped inside the zip it must say
// "failed" and name the file. A second run hashes with the page's own streaming SHA-256 (the
// path large files take). The same checks run in Debian's Firefox ESR, whose network goes to a
// recording dead end (lib/firefox.js).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import * as h from "../lib/harness.js";
import { launchFirefox } from "../lib/firefox.js";

let rec;
let key;
let range;
let goodDir;
let badDir;
const contexts = [];
const firefoxes = [];

/** Extracts a zip of stored entries (what bundles are) without checking CRCs, like a lenient
 * unzip tool would: the player must catch damage by itself. */
function unzipStored(zipPath, outDir) {
  const d = readFileSync(zipPath);
  mkdirSync(outDir, { recursive: true });
  let eocd = d.length - 22;
  while (d.readUInt32LE(eocd) !== 0x06054b50) eocd--;
  let n = d.readUInt16LE(eocd + 10);
  let at = d.readUInt32LE(eocd + 16);
  if (at === 0xffffffff || n === 0xffff) {
    const z64 = Number(d.readBigUInt64LE(eocd - 20 + 8));
    n = Number(d.readBigUInt64LE(z64 + 32));
    at = Number(d.readBigUInt64LE(z64 + 48));
  }
  for (let i = 0; i < n; i++) {
    const nameLen = d.readUInt16LE(at + 28), extraLen = d.readUInt16LE(at + 30), commentLen = d.readUInt16LE(at + 32);
    const name = d.subarray(at + 46, at + 46 + nameLen).toString("utf8");
    let size = d.readUInt32LE(at + 20), local = d.readUInt32LE(at + 42);
    // zip64 extra: uncompressed size, compressed size, local header offset (those all ones).
    const extra = d.subarray(at + 46 + nameLen, at + 46 + nameLen + extraLen);
    for (let e = 0; e + 4 <= extra.length; e += 4 + extra.readUInt16LE(e + 2)) {
      if (extra.readUInt16LE(e) !== 1) continue;
      let f = e + 4;
      const usize = d.readUInt32LE(at + 24);
      if (usize === 0xffffffff) { size = Number(extra.readBigUInt64LE(f)); f += 8; }
      if (d.readUInt32LE(at + 20) === 0xffffffff) { size = Number(extra.readBigUInt64LE(f)); f += 8; }
      if (local === 0xffffffff) local = Number(extra.readBigUInt64LE(f));
    }
    const body = local + 30 + d.readUInt16LE(local + 26) + d.readUInt16LE(local + 28);
    writeFileSync(path.join(outDir, name), d.subarray(body, body + size));
    at += 46 + nameLen + extraLen + commentLen;
  }
}

/** Where entry `name`'s bytes are in the zip. */
function entryRange(d, name) {
  for (let at = 0; at + 30 < d.length; at++) {
    if (d.readUInt32LE(at) !== 0x04034b50) continue;
    const nameLen = d.readUInt16LE(at + 26);
    if (d.subarray(at + 30, at + 30 + nameLen).toString() === name) {
      const body = at + 30 + nameLen + d.readUInt16LE(at + 28);
      return body;
    }
  }
  throw new Error(`no ${name} in the zip`);
}

const utc = (ms) => { const s = new Date(ms).toISOString(); return `${s.slice(0, 10)} ${s.slice(11, 23)} UTC`; };
const parseUtc = (t) => Date.parse(`${t.slice(0, 10)}T${t.slice(11, 23)}Z`);

before(async () => {
  const cam = await h.startTestcam(["--mounts", "2", "--width", "320", "--height", "180"], "testcam-player");
  rec = new h.Recorder();
  await rec.init([h.ADMIN]);
  await rec.addCamera("Gate", cam.urls[0]);
  await rec.addCamera("Yard", cam.urls[1]);
  const t0 = Date.now();
  await rec.serve(["--segment-duration-secs", "4"]);
  key = /^current signing key: (\S+)/m.exec((await h.run(["key", "show", "--data-dir", rec.dir])).out)[1];
  // 8 s from 10.25 s after the start, once the segments holding it are sealed (4 s segments).
  range = { start: t0 + 10_250, end: t0 + 18_250 };
  const zip = path.join(path.dirname(rec.dir), "bundle.zip");
  await h.waitFor(async () => {
    if (Date.now() < range.end + 10_000) return false;
    const r = await h.run(["export", "--data-dir", rec.dir, "--camera", "Gate", "--camera", "Yard",
      "--start", new Date(range.start).toISOString(), "--end", new Date(range.end).toISOString(),
      "--out", zip, "--case", "2026/0042", "--reason", "player test"]);
    if (r.code !== 0) throw new Error(r.out);
    return true;
  }, 120e3, "an export of both cameras");
  goodDir = path.join(path.dirname(rec.dir), "unpacked");
  unzipStored(zip, goodDir);
  // One byte of Gate's MP4 flipped inside the zip (in its video), then unpacked.
  const d = readFileSync(zip);
  const body = entryRange(d, "camera-1.mp4");
  const manifest = JSON.parse(readFileSync(path.join(goodDir, "manifest.json"), "utf8"));
  const cam1 = manifest.cameras.find((c) => c.file === "camera-1.mp4");
  d[body + cam1.mdat_offset + Math.floor((cam1.file_bytes - cam1.mdat_offset) / 2)] ^= 0x01;
  const bad = path.join(path.dirname(rec.dir), "tampered.zip");
  writeFileSync(bad, d);
  badDir = path.join(path.dirname(rec.dir), "tampered");
  unzipStored(bad, badDir);
}, { timeout: 400e3 });

after(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  for (const f of firefoxes) await f.close();
  h.killAll();
});

/** Opens `dir`/player.html from file:// with the network blocked; picks every file. */
async function openPlayer(dir, query = "") {
  const ctx = await h.newBrowser();
  contexts.push(ctx);
  const outside = [];
  // Nothing but the page itself and the picked files' blob: URLs may be asked for.
  await ctx.route(/^(https?|wss?|ftp):/, (r) => { outside.push(r.request().url()); return r.abort(); });
  const page = await ctx.newPage();
  const seen = [];
  page.on("request", (r) => seen.push(r.url()));
  await page.goto(`file://${path.join(dir, "player.html")}${query}`);
  const files = readdirSync(dir).map((f) => path.join(dir, f));
  await page.locator("#pick-files").setInputFiles(files);
  await page.waitForFunction(() => document.body.dataset.verified !== "", null, { timeout: 60e3 });
  return { page, outside, seen };
}

test("the player verifies the bundle offline and plays both cameras with the recording time on the picture", { timeout: 180e3 }, async () => {
  const { page, outside, seen } = await openPlayer(goodDir);
  const checks = await page.locator("#checks").innerText();
  assert.equal(await page.evaluate(() => document.body.dataset.verified), "ok", checks);
  assert.match(checks, /manifest\.sig is a valid Ed25519 signature/);
  assert.match(checks, /camera-1\.mp4: SHA-256 matches/);
  assert.match(checks, /camera-2\.mp4: SHA-256 matches/);
  assert.match(checks, /player\.html: SHA-256 matches/);
  // The fingerprint, exactly as the recorder's administrator reads it.
  assert.equal(await page.locator("#fingerprint").innerText(), key);
  await page.locator("#pin").fill(key.toUpperCase().replace("SHA256:", ""));
  assert.match(await page.locator("#pin-result").innerText(), /^matches/);

  // Before playing: the shared clock is at the requested start, and each picture shows the
  // time of its first frame: the requested start, or the frame just after it (within 0.2 s).
  assert.equal(await page.locator("#now").innerText(), utc(range.start));
  const clocks = page.locator(".cam .clock");
  await h.waitFor(async () => (await clocks.allInnerTexts()).every((t) => {
    const d = parseUtc(t) - range.start;
    return d >= 0 && d < 200;
  }), 20e3, `both overlays at ${utc(range.start)}`);
  // Both cameras draw green over the whole range (no gap in a continuous recording).
  assert.equal(await page.locator(".track").count(), 2);

  await page.locator("#play").click();
  const state = await h.waitFor(async () => {
    const s = await page.evaluate(() => Array.from(document.querySelectorAll(".cam"), (c) => ({
      t: c.querySelector("video").currentTime,
      paused: c.querySelector("video").paused,
      ready: c.querySelector("video").readyState,
      w: c.querySelector("video").videoWidth,
      clock: c.querySelector(".clock").textContent,
    })));
    return s.every((c) => c.t > 2 && !c.paused && c.w === 320) ? s : null;
  }, 30e3, "both videos playing past 2 s");
  for (const c of state) {
    assert.match(c.clock, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC$/);
    // The time drawn is the recording's: the requested start plus the position in the clip.
    const shown = parseUtc(c.clock);
    assert.ok(Math.abs(shown - (range.start + c.t * 1000)) < 1000, `${c.clock} at ${c.t} s`);
  }
  // In sync: the two pictures show times within a second of each other.
  assert.ok(Math.abs(parseUtc(state[0].clock) - parseUtc(state[1].clock)) < 1000, JSON.stringify(state));
  await h.screenshot(page, "player-playing");

  assert.deepEqual(outside, [], "the player asked the network for something");
  assert.deepEqual(seen.filter((u) => !/^(file|blob|data):/.test(u)), []);
});

test("one flipped byte of an MP4 makes the player say failed and name the file", { timeout: 120e3 }, async () => {
  const { page } = await openPlayer(badDir);
  assert.equal(await page.evaluate(() => document.body.dataset.verified), "failed");
  const checks = await page.locator("#checks").innerText();
  assert.match(checks, /FAILED: camera-1\.mp4: SHA-256 differs from the manifest/);
  assert.match(checks, /OK: camera-2\.mp4: SHA-256 matches/);
  assert.match(await page.locator("#status").innerText(), /NOT intact/);
  await h.screenshot(page, "player-tampered");
});

test("the player's own streaming SHA-256 (for large files) agrees", { timeout: 120e3 }, async () => {
  const { page } = await openPlayer(goodDir, "?stream-hash");
  assert.equal(await page.evaluate(() => document.body.dataset.verified), "ok", await page.locator("#checks").innerText());
  // And it is SHA-256: the FIPS 180-4 test vectors.
  const abc = await page.evaluate(() => window.nvrPlayer.sha256(new TextEncoder().encode("abc")));
  assert.equal(abc, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const long = await page.evaluate(() => window.nvrPlayer.sha256(new TextEncoder().encode("a".repeat(1000000))));
  assert.equal(long, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  const bad = await openPlayer(badDir, "?stream-hash");
  assert.equal(await bad.page.evaluate(() => document.body.dataset.verified), "failed");
});

test("in Firefox too: the player verifies offline, plays both cameras with the time on the picture, and catches a flipped byte", { timeout: 180e3 }, async () => {
  const ff = await launchFirefox();
  firefoxes.push(ff);
  const open = async (dir) => {
    const page = await ff.browser.newPage();
    await page.goto(`file://${path.join(dir, "player.html")}`);
    const input = await page.$("#pick-files");
    await input.uploadFile(...readdirSync(dir).map((f) => path.join(dir, f)));
    await page.waitForFunction(() => document.body.dataset.verified !== "", { timeout: 60e3 });
    return page;
  };
  const text = (page, sel) => page.$eval(sel, (e) => e.innerText);

  const page = await open(goodDir);
  const checks = await text(page, "#checks");
  assert.equal(await page.evaluate(() => document.body.dataset.verified), "ok", checks);
  assert.match(checks, /manifest\.sig is a valid Ed25519 signature/);
  assert.match(checks, /camera-1\.mp4: SHA-256 matches/);
  assert.match(checks, /camera-2\.mp4: SHA-256 matches/);
  assert.equal(await text(page, "#fingerprint"), key);
  assert.equal(await text(page, "#now"), utc(range.start));

  await page.click("#play");
  const state = await h.waitFor(async () => {
    const s = await page.evaluate(() => Array.from(document.querySelectorAll(".cam"), (c) => ({
      t: c.querySelector("video").currentTime,
      paused: c.querySelector("video").paused,
      w: c.querySelector("video").videoWidth,
      clock: c.querySelector(".clock").textContent,
    })));
    return s.length === 2 && s.every((c) => c.t > 2 && !c.paused && c.w === 320) ? s : null;
  }, 30e3, "both videos playing past 2 s in Firefox");
  for (const c of state) {
    const shown = parseUtc(c.clock);
    assert.ok(Math.abs(shown - (range.start + c.t * 1000)) < 1000, `${c.clock} at ${c.t} s`);
  }
  assert.ok(Math.abs(parseUtc(state[0].clock) - parseUtc(state[1].clock)) < 1000, JSON.stringify(state));
  await page.screenshot({ path: path.join(h.SCREENSHOTS, "player-firefox.png") });
  // What the page loaded: its own file, the picked files (blob:) and nothing else.
  const loaded = await page.evaluate(() => performance.getEntriesByType("resource").map((e) => e.name));
  assert.deepEqual(loaded.filter((u) => !/^(file|blob|data):/.test(u)), []);

  const bad = await open(badDir);
  assert.equal(await bad.evaluate(() => document.body.dataset.verified), "failed");
  assert.match(await text(bad, "#checks"), /FAILED: camera-1\.mp4: SHA-256 differs from the manifest/);
  assert.match(await text(bad, "#status"), /NOT intact/);

  assert.deepEqual(ff.asked, [], "Firefox asked the network for something while the player ran");
});
