// RecordedPlayer: plays one window [start, end) of recorded video in a <video> element and
// tells which wall time is on screen.
// - H.264 (or anything the browser decodes): <video src="view.mp4?start=&end=">, a Range-
//   capable MP4 that presents from `start` exactly, so wall time = start + currentTime, and
//   seeking inside the window is a plain currentTime change.
// - H.265 where the browser cannot decode it: view.mp4?...&transcode=h264&width=&height= is a
//   fragmented MP4 stream without Range. It is read with fetch streaming and appended to a
//   MediaSource (pausing the reader while more than AHEAD_S seconds are buffered ahead). The
//   stream starts at the key frame at or before `start`, whose wall time the server sends in
//   `x-recording-start`; wall time = that + (currentTime - first buffered time), and playback
//   begins at `start`. Seeking outside what is buffered is a new request from the new time
//   (the owner calls load again).

import { ApiError } from "/js/api.js";

const AHEAD_S = 20;
const TRIM_BEHIND_S = 30;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class RecordedPlayer {
  constructor(video, cameraId, { onEnded, onError, onWaiting } = {}) {
    this.video = video;
    this.id = cameraId;
    this.onEnded = onEnded || (() => {});
    this.onError = onError || (() => {});
    this.onWaiting = onWaiting || (() => {});
    this.win = null;
    this.token = 0;
    this.rate = 1;
    this.video.addEventListener("ended", () => { if (this.win) this.onEnded(this.win); });
    this.video.addEventListener("waiting", () => this.onWaiting(true));
    this.video.addEventListener("playing", () => this.onWaiting(false));
    this.video.addEventListener("canplay", () => this.onWaiting(false));
    this.video.addEventListener("error", () => {
      if (!this.win || this.mode !== "src") return;
      const e = this.video.error;
      this.onError(new Error(`cannot play this recording (${e ? e.message || `code ${e.code}` : "error"})`));
    });
  }

  /**
   * Loads window {start, end, transcode, width, height, stream} (ms; stream "main" by default,
   * "sub" for the camera's sub-stream) and shows the frame at `start`. Starts playing when
   * `autoplay`.
   */
  load(win, { autoplay = true } = {}) {
    this.stop();
    const token = ++this.token;
    this.win = { ...win };
    this.base = null;
    this.streamStart = null;
    this.autoplay = autoplay;
    const q = `start=${encodeURIComponent(new Date(win.start).toISOString())}&end=${encodeURIComponent(new Date(win.end).toISOString())}` +
      (win.stream && win.stream !== "main" ? `&stream=${win.stream}` : "");
    if (!win.transcode) {
      this.mode = "src";
      this.base = 0;
      this.video.src = `/api/cameras/${this.id}/view.mp4?${q}`;
      this.video.playbackRate = this.rate;
      if (autoplay) this.video.play().catch(() => {});
      else this.video.pause();
    } else {
      this.mode = "mse";
      const dpr = window.devicePixelRatio || 1;
      const even = (n) => Math.max(2, Math.round(n / 2) * 2);
      let w = even(Math.min(win.width || 1920, this.video.clientWidth * dpr || 1280));
      let h = even(Math.min(win.height || 1080, this.video.clientHeight * dpr || 720));
      const url = `/api/cameras/${this.id}/view.mp4?${q}&transcode=h264&width=${w}&height=${h}`;
      this.streamMse(url, token).catch((e) => {
        if (token === this.token && e.name !== "AbortError") this.onError(e);
      });
    }
  }

  stop() {
    this.token++;
    if (this.abort) { this.abort.abort(); this.abort = null; }
    this.win = null;
    this.video.pause();
    this.video.removeAttribute("src");
    this.video.load();
    if (this.objectUrl) { URL.revokeObjectURL(this.objectUrl); this.objectUrl = null; }
  }

  /** Wall time (ms) of the frame on screen, or null. */
  wallTime() {
    if (!this.win || this.base === null) return this.win ? this.win.start : null;
    return this.origin() + (this.video.currentTime - this.base) * 1000;
  }

  /** Wall time (ms) of media time `base`: the window start, or the stream's first frame. */
  origin() {
    return this.mode === "mse" && this.streamStart != null ? this.streamStart : this.win.start;
  }

  /** Seeks inside the loaded window if possible (true), else the owner must load(). */
  seekWithin(t) {
    if (!this.win || t < this.win.start || t >= this.win.end) return false;
    const pos = (t - this.win.start) / 1000;
    if (this.mode === "src") { this.video.currentTime = pos; return true; }
    if (this.base === null) return false;
    const target = this.base + (t - this.origin()) / 1000;
    const b = this.video.buffered;
    for (let i = 0; i < b.length; i++) {
      if (target >= b.start(i) && target <= b.end(i) - 0.05) { this.video.currentTime = target; return true; }
    }
    return false;
  }

  get paused() { return this.video.paused; }
  play() { this.autoplay = true; return this.video.play().catch(() => {}); }
  pause() { this.autoplay = false; this.video.pause(); }
  setRate(r) { this.rate = r; this.video.playbackRate = r; }

  /** Pauses and moves one frame (dir = ±1) at `fps`. */
  step(dir, fps) {
    this.pause();
    const t = this.video.currentTime + dir / (fps || 15);
    this.video.currentTime = Math.max(this.base || 0, t);
  }

  async streamMse(url, token) {
    const ctrl = new AbortController();
    this.abort = ctrl;
    const resp = await fetch(url, { signal: ctrl.signal, credentials: "same-origin" });
    if (!resp.ok) {
      let msg = `HTTP ${resp.status}`;
      let kind = null;
      try { const j = await resp.json(); msg = j.error || msg; kind = j.kind; } catch { /* not JSON */ }
      throw new ApiError(resp.status, msg, kind);
    }
    const first = Date.parse(resp.headers.get("x-recording-start") || "");
    this.streamStart = Number.isNaN(first) ? this.win.start : first;
    const reader = resp.body.getReader();
    let head = new Uint8Array(0);
    let mime = null;
    while (!mime) {
      const { done, value } = await reader.read();
      if (token !== this.token) { reader.cancel().catch(() => {}); return; }
      if (done) throw new Error("the transcoded stream ended before any video");
      head = concat(head, value);
      mime = initMime(head);
    }
    if (!MediaSource.isTypeSupported(mime)) throw new Error(`this browser cannot play ${mime}`);
    const ms = new MediaSource();
    this.objectUrl = URL.createObjectURL(ms);
    this.video.src = this.objectUrl;
    await new Promise((r) => ms.addEventListener("sourceopen", r, { once: true }));
    if (token !== this.token) { reader.cancel().catch(() => {}); return; }
    const sb = ms.addSourceBuffer(mime);
    const append = (data) => new Promise((resolve, reject) => {
      const ok = () => { sb.removeEventListener("error", bad); resolve(); };
      const bad = () => { sb.removeEventListener("updateend", ok); reject(new Error("media buffer error")); };
      sb.addEventListener("updateend", ok, { once: true });
      sb.addEventListener("error", bad, { once: true });
      sb.appendBuffer(data);
    });
    const removeRange = (a, b) => new Promise((resolve) => {
      sb.addEventListener("updateend", resolve, { once: true });
      sb.remove(a, b);
    });
    await append(head);
    for (;;) {
      if (token !== this.token) { reader.cancel().catch(() => {}); return; }
      const v = this.video;
      const b = sb.buffered;
      if (b.length && this.base === null) {
        this.base = b.start(0);
        // Decoding starts at a key frame; show from the requested time.
        v.currentTime = this.base + Math.max(0, (this.win.start - this.streamStart) / 1000);
        v.playbackRate = this.rate;
        if (this.autoplay) v.play().catch(() => {});
      }
      if (b.length && b.end(b.length - 1) - v.currentTime > AHEAD_S) { await sleep(250); continue; }
      if (b.length && v.currentTime - b.start(0) > TRIM_BEHIND_S + 10) {
        await removeRange(0, v.currentTime - TRIM_BEHIND_S);
        continue;
      }
      const { done, value } = await reader.read();
      if (token !== this.token) { reader.cancel().catch(() => {}); return; }
      if (done) break;
      await append(value);
    }
    if (this.base === null && sb.buffered.length) {
      this.base = sb.buffered.start(0);
      this.video.currentTime = this.base + Math.max(0, (this.win.start - this.streamStart) / 1000);
      if (this.autoplay) this.video.play().catch(() => {});
    }
    if (ms.readyState === "open") ms.endOfStream();
  }
}

function concat(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** Once `buf` holds the whole moov box, the MIME type with the codec from its avcC/hvcC. */
export function initMime(buf) {
  let off = 0;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  while (off + 8 <= buf.length) {
    let size = dv.getUint32(off);
    const type = String.fromCharCode(buf[off + 4], buf[off + 5], buf[off + 6], buf[off + 7]);
    if (size === 1) {
      if (off + 16 > buf.length) return null;
      size = Number(dv.getBigUint64(off + 8));
    }
    if (size < 8) return null;
    if (type === "moov") {
      if (off + size > buf.length) return null;
      const moov = buf.subarray(off, off + size);
      return `video/mp4; codecs="${codecFromMoov(moov)}"`;
    }
    off += size;
  }
  return null;
}

function codecFromMoov(moov) {
  const hex = (n) => n.toString(16).padStart(2, "0");
  for (let i = 4; i + 8 < moov.length; i++) {
    if (moov[i] === 0x61 && moov[i + 1] === 0x76 && moov[i + 2] === 0x63 && moov[i + 3] === 0x43) { // avcC
      return `avc1.${hex(moov[i + 5])}${hex(moov[i + 6])}${hex(moov[i + 7])}`;
    }
  }
  return "avc1.640028";
}
