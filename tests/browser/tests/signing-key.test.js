// The evidence signing key on the Status page: the fingerprint is the very string that
// /api/status and `nvr key show` give (what a verifier pins with `nvr verify --expect-key`),
// and after a rotation the page lists both keys with the current one marked.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as h from "../lib/harness.js";

let base;
let rotateOut;
let showOut;
let ctx;

/** The fingerprint after `label` on a line of `out`. */
function fingerprintAfter(out, label) {
  const line = out.split("\n").find((l) => l.startsWith(label));
  assert.ok(line, `no ${label} line in ${out}`);
  return line.slice(label.length).trim().split(/\s+/)[0];
}

before(async () => {
  const rec = new h.Recorder();
  await rec.init([h.ADMIN]);
  rotateOut = (await h.run(["key", "rotate", "--data-dir", rec.dir])).out;
  showOut = (await h.run(["key", "show", "--data-dir", rec.dir])).out;
  base = await rec.serve();
}, { timeout: 120e3 });

after(async () => {
  if (ctx) await ctx.close().catch(() => {});
  h.killAll();
});

test("the Status page shows the signing key fingerprint of /api/status and every key used", { timeout: 120e3 }, async () => {
  const current = fingerprintAfter(showOut, "current signing key: ");
  const retired = fingerprintAfter(rotateOut, "retired signing key: ");
  assert.match(current, /^SHA256:([0-9a-f]{4}-){15}[0-9a-f]{4}$/);
  assert.notEqual(current, retired);

  ctx = await h.newBrowser();
  const page = await ctx.newPage();
  await h.login(page, base, h.ADMIN);
  const status = await (await page.request.get(`${base}/api/status`)).json();
  assert.equal(status.signing_key_fingerprint, current);

  await page.locator("#nav a", { hasText: "Status" }).click();
  const shown = page.locator("#signing-key-fingerprint");
  await shown.waitFor({ timeout: 15e3 });
  assert.equal(await shown.innerText(), status.signing_key_fingerprint);

  const rows = page.locator("#signing-keys tr");
  assert.equal(await rows.count(), 2);
  const currentRow = page.locator('#signing-keys tr[data-current="true"]');
  assert.equal(await currentRow.count(), 1);
  assert.match(await currentRow.innerText(), new RegExp(`${current}[\\s\\S]*Current`));
  const retiredRow = page.locator('#signing-keys tr[data-current="false"]');
  assert.match(await retiredRow.innerText(), new RegExp(`${retired}[\\s\\S]*Retired`));
  await h.screenshot(page, "status-signing-key");
});
