// Test harness of the browser tests: starts the real `nvr` binary as test cameras and as the
// recorder on 127.0.0.1 with port 0 (like tests/common/mod.rs), launches Debian's Chromium
// through playwright-core with a fresh profile, records every request and WebSocket of every
// page, and kills every process it started when the tests end (also on failure or signal).

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, mkdirSync, createWriteStream } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import readline from "node:readline";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, "../../..");
export const NVR_BIN = process.env.NVR_BIN || path.join(REPO, "target/debug/nvr");
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
export const SCREENSHOTS = path.join(REPO, "target/browser-screenshots");
export const ADMIN = { username: "admin", password: "correct-horse-battery", role: "admin" };
export const GUARD = { username: "guard", password: "guard-password-123", role: "guard" };
export const OFFICER = { username: "officer", password: "evidence-password-123", role: "evidence" };
export const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
  "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; " +
  "frame-ancestors 'none'; form-action 'self'";

const children = new Set();
const tempDirs = new Set();
const WORK = mkdtempSync(path.join(tmpdir(), "nvr-browser-"));
tempDirs.add(WORK);
export const LOG_DIR = path.join(WORK, "logs");
mkdirSync(LOG_DIR, { recursive: true });

/** Kills (SIGKILL) every process the harness started. */
export function killAll() {
  for (const c of children) {
    try { c.kill("SIGKILL"); } catch { /* gone */ }
  }
  children.clear();
}
process.on("exit", (code) => {
  killAll();
  if (code !== 0 || process.env.KEEP_TMP) {
    process.stderr.write(`browser tests: data directories and process logs kept in ${WORK}\n`);
    return;
  }
  for (const d of tempDirs) { try { rmSync(d, { recursive: true, force: true }); } catch { /* busy */ } }
});
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(sig, () => { killAll(); process.exit(130); });

let logN = 0;
/** Starts `nvr ARGS` in the background; stdout lines go to `onLine`, stderr to a log file. */
export function start(args, { onLine, name = args[0] } = {}) {
  const logPath = path.join(LOG_DIR, `${String(++logN).padStart(2, "0")}-${name}.log`);
  const child = spawn(NVR_BIN, args, { stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  child.on("exit", () => children.delete(child));
  const log = createWriteStream(logPath);
  child.stderr.pipe(log);
  child.lineListeners = new Set();
  const rl = readline.createInterface({ input: child.stdout });
  rl.on("line", (l) => {
    log.write(`[stdout] ${l}\n`);
    if (onLine) onLine(l);
    for (const f of child.lineListeners) f(l);
  });
  child.logPath = logPath;
  return child;
}

/** Runs `nvr ARGS` to completion (stdin optional); resolves to {code, out}. */
export function run(args, stdin) {
  return new Promise((resolve, reject) => {
    const child = spawn(NVR_BIN, args, { stdio: ["pipe", "pipe", "pipe"] });
    children.add(child);
    let out = "";
    child.stdout.on("data", (d) => { out += d; });
    child.stderr.on("data", (d) => { out += d; });
    child.on("error", reject);
    child.on("exit", (code) => { children.delete(child); resolve({ code, out }); });
    if (stdin !== undefined) child.stdin.end(`${stdin}\n`); else child.stdin.end();
  });
}

async function runOk(args, stdin) {
  const r = await run(args, stdin);
  if (r.code !== 0) throw new Error(`nvr ${args.join(" ")} failed (${r.code}):\n${r.out}`);
  return r.out;
}

/** Waits for a stdout line of `child` matching `pred`, collecting lines until then. */
function waitLine(child, pred, timeoutMs, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; see ${child.logPath}`)), timeoutMs);
    const onExit = (code) => { clearTimeout(timer); reject(new Error(`${what}: process exited (${code}); see ${child.logPath}`)); };
    child.once("exit", onExit);
    const f = (l) => {
      if (!pred(l)) return;
      clearTimeout(timer);
      child.lineListeners.delete(f);
      child.off("exit", onExit);
      resolve(l);
    };
    child.lineListeners.add(f);
  });
}

/** `nvr testcam --listen 127.0.0.1:0 ...`; resolves to {child, urls, subUrls}. */
export async function startTestcam(extra, name = "testcam") {
  const urls = [];
  const subUrls = [];
  const child = start(["testcam", "--listen", "127.0.0.1:0", ...extra], {
    name, onLine: (l) => {
      if (l.startsWith("rtsp://")) urls.push(l.trim());
      if (l.startsWith("sub rtsp://")) subUrls.push(l.slice(4).trim());
    },
  });
  await waitLine(child, (l) => l.trim() === "testcam ready", 180e3, "testcam ready");
  if (!urls.length) throw new Error("testcam printed no rtsp:// URL");
  return { child, urls, subUrls };
}

/** A data directory with users, and `nvr serve` on it. */
export class Recorder {
  constructor() {
    this.dir = path.join(mkdtempSync(path.join(WORK, "rec-")), "data");
  }
  async init(users = [ADMIN, GUARD]) {
    await runOk(["init", "--data-dir", this.dir]);
    for (const u of users) {
      await runOk(["user", "add", "--data-dir", this.dir, "--username", u.username, "--role", u.role, "--password-stdin"], u.password);
    }
  }
  /** `nvr camera add` (probed first); `subUrl`: the camera's sub-stream, if any. */
  /** `extra`: more `nvr camera add` arguments, e.g. ["--record-audio"]. */
  async addCamera(name, url, subUrl, extra = []) {
    const sub = subUrl ? ["--sub-url", subUrl] : [];
    await runOk(["camera", "add", "--data-dir", this.dir, "--name", name, "--url", url, ...sub, ...extra]);
  }
  /**
   * `extra`: more `nvr serve` arguments, e.g. ["--segment-duration-secs", "4"]; `listen`: the
   * address (a LAN-style 0.0.0.0:0 is reached through 127.0.0.1). A first-run setup code the
   * server prints on its console lands in `this.setupCode`.
   */
  async serve(extra = [], { listen = "127.0.0.1:0" } = {}) {
    this.child = start(["serve", "--data-dir", this.dir, "--listen", listen, ...extra], {
      name: "serve",
      onLine: (l) => { if (l.startsWith("first-run setup code: ")) this.setupCode = l.slice(22).trim(); },
    });
    const line = await waitLine(this.child, (l) => l.startsWith("nvr serving on "), 60e3, "nvr serving on");
    this.base = line.slice("nvr serving on ".length).trim().replace(/\/$/, "").replace("0.0.0.0", "127.0.0.1");
    recorderOrigins.add(new URL(this.base).origin);
    return this.base;
  }
}

/** Origins of the recorders the tests started: the only ones the browser may talk to. */
export const recorderOrigins = new Set();

/**
 * Everything the browser asked for, across every page of every test. `sockets`: each
 * WebSocket with the bytes and messages it received, its `init` messages, and whether it
 * closed (`websockets` lists their URLs).
 */
export const traffic = { requests: [], websockets: [], sockets: [], documents: [], cspViolations: [], pageErrors: [] };

/** A fresh Chromium profile (its own cookies) with request recording on every page. */
export async function newBrowser() {
  const profile = mkdtempSync(path.join(WORK, "profile-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--autoplay-policy=no-user-gesture-required"],
    viewport: { width: 1366, height: 768 },
    timezoneId: "Europe/Berlin",
  });
  context.on("page", watch);
  for (const p of context.pages()) watch(p);
  return context;
}

function watch(page) {
  page.on("request", (r) => traffic.requests.push({ url: r.url(), type: r.resourceType() }));
  page.on("websocket", (ws) => {
    traffic.websockets.push(ws.url());
    const s = { url: ws.url(), bytes: 0, messages: 0, inits: [], closed: false };
    traffic.sockets.push(s);
    ws.on("framereceived", ({ payload }) => {
      s.messages++;
      s.bytes += typeof payload === "string" ? Buffer.byteLength(payload) : payload.length;
      if (typeof payload === "string" && payload.includes("\"init\"")) {
        try { s.inits.push(JSON.parse(payload)); } catch { /* not JSON */ }
      }
    });
    ws.on("close", () => { s.closed = true; });
  });
  page.on("response", async (r) => {
    const ct = r.headers()["content-type"] || "";
    if (r.request().resourceType() === "document" || ct.startsWith("text/html")) {
      traffic.documents.push({ url: r.url(), status: r.status(), csp: r.headers()["content-security-policy"] || null });
    }
  });
  page.on("console", (m) => {
    if (/Content Security Policy/i.test(m.text())) traffic.cspViolations.push(m.text());
  });
  page.on("pageerror", (e) => traffic.pageErrors.push(`${page.url()}: ${e.message}`));
}

/** Polls `f` (async) until it returns a truthy value; throws `what` after `timeoutMs`. */
export async function waitFor(f, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try { last = await f(); if (last) return last; } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`) });
}

/** Logs in through the form. */
export async function login(page, base, user) {
  await page.goto(`${base}/`);
  await page.locator("#login-username").fill(user.username);
  await page.locator("#login-password").fill(user.password);
  await page.locator("#login-form button[type=submit]").click();
  await page.locator("#logout").waitFor({ timeout: 15000 });
}
