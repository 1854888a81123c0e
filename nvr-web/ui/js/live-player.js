// LivePlayer: one camera's live video in a <video> element, from the recorder's WebSocket
// (/api/cameras/{id}/live?stream=main|sub) through Media Source Extensions.
//
// Protocol (docs/API.md): a text {"type":"init","mime":...} then one binary init segment
// (ftyp+moov), then one binary moof+mdat fragment per frame; the init pair comes again when
// the stream's parameters change; text {"type":"status",...} while the camera is away.
//
// Low latency: fragments are appended as they arrive (batched only while the SourceBuffer is
// busy), the SourceBuffer is in "sequence" mode so a skipped GOP or a restarted stream leaves
// no gap to stall on, and when the buffered end runs more than MAX_LAG_S ahead of the
// playhead we jump to live. Self-healing: no data for STALL_MS (or a frozen playhead) closes
// the socket and reconnects with jittered backoff. The owner stops players it cannot see.
//
// Switching stream (setStream: a grid tile going full size, a forced stream) never shows a
// black frame: the new stream's socket opens beside the playing one, and once its init segment
// arrives the old socket closes and the new stream is appended to the same SourceBuffer
// (changeType when the codec string differs), as adaptive streaming switches renditions. The
// <video> keeps the last picture until the new stream's first key frame decodes.

const STALL_MS = 3500;          // no frame for this long (once video flowed): reconnect
const FIRST_FRAME_MS = 15000;   // a new stream starts at a key frame: wait this long for one
const CAMERA_AWAY_MS = 30000;   // the server said the camera is away: wait this long for news
const MAX_LAG_S = 1.5;          // buffered end this far ahead of the playhead: jump to live
const KEEP_BEHIND_S = 10;       // buffer kept behind the playhead
const TRIM_AFTER_S = 30;        // trim once this much is behind the playhead
const OFFLINE_AFTER_MS = 20000; // not live for this long after failures: call it offline
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];

/** States reported through onState: connecting | live | reconnecting | offline | unsupported. */
export class LivePlayer {
  /**
   * @param {HTMLVideoElement} video
   * @param {number} cameraId
   * @param {{onState?: (state: string, reason: string|null, info: object) => void,
   *          size?: () => {width: number, height: number}, codecs?: string[]}} opts
   */
  constructor(video, cameraId, opts = {}) {
    this.video = video;
    this.id = cameraId;
    this.onState = opts.onState || (() => {});
    this.size = opts.size || (() => ({ width: video.clientWidth, height: video.clientHeight }));
    this.codecs = opts.codecs || ["h264"];
    /** The stream asked for: "main" or "sub". */
    this.stream = opts.stream || "main";
    /** The stream whose video is playing (differs from `stream` while switching). */
    this.playing = null;
    this.switchWs = null;
    this.running = false;
    this.state = null;
    this.ws = null;
    this.ms = null;
    this.sb = null;
    this.objectUrl = null;
    this.queue = [];
    this.pendingInit = null;
    this.failures = 0;
    this.info = {};
    this.onVideoError = () => {
      if (this.running && this.video.error) this.retry(`decoder error: ${this.video.error.message || this.video.error.code}`);
    };
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.failures = 0;
    this.everLive = false;
    this.notLiveSince = performance.now();
    this.video.muted = true;
    this.video.playsInline = true;
    this.video.addEventListener("error", this.onVideoError);
    this.timer = setInterval(() => this.tick(), 500);
    this.connect(null);
  }

  /** Stops streaming; `keepFrame` leaves the last frame on screen (paused) instead of black. */
  stop(keepFrame = false) {
    if (!this.running) return;
    this.running = false;
    clearInterval(this.timer);
    clearTimeout(this.retryTimer);
    this.video.removeEventListener("error", this.onVideoError);
    this.closeSocket();
    this.abandonSwitch();
    this.playing = null;
    if (keepFrame) {
      this.video.pause();
      this.ms = null;
      this.sb = null;
      this.queue = [];
    } else {
      this.dropMedia();
    }
    this.state = null;
    this.reason = null;
  }

  setState(state, reason) {
    if (state === this.state && reason === this.reason) return;
    this.state = state;
    this.reason = reason;
    if (state) this.onState(state, reason, this.info);
  }

  /** The WebSocket of this camera's `stream`. */
  openSocket(stream) {
    const { width, height } = this.size();
    const even = (n) => Math.max(160, Math.round(n / 2) * 2);
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const q = `codecs=${this.codecs.join(",")}&width=${even(width)}&height=${even(height)}&stream=${stream}`;
    const ws = new WebSocket(`${proto}//${location.host}/api/cameras/${this.id}/live?${q}`);
    ws.binaryType = "arraybuffer";
    return ws;
  }

  /**
   * Plays `stream` ("main" or "sub") from now on. While video plays, the switch keeps the last
   * picture on screen until the new stream's first frame (see the top of this file).
   */
  setStream(stream) {
    if (stream === this.stream) return;
    this.stream = stream;
    if (!this.running) return;
    const showing = this.ws && this.ms && this.state === "live";
    if (!showing) { this.abandonSwitch(); this.connect(null); return; }
    this.abandonSwitch();
    const ws = this.openSocket(stream);
    this.switchWs = ws;
    this.switchInit = null;
    this.switchTimer = setTimeout(() => { if (this.switchWs === ws) this.abandonSwitch(); }, FIRST_FRAME_MS);
    ws.onmessage = (ev) => {
      if (this.ws === ws) { this.onMessage(ev); return; }
      if (this.switchWs !== ws) return;
      if (typeof ev.data === "string") {
        try {
          const m = JSON.parse(ev.data);
          if (m.type === "init") this.switchInit = m;
        } catch { /* not JSON: ignore */ }
        return;
      }
      if (!this.switchInit) return;
      // The new stream's init segment: from here on it feeds the same SourceBuffer.
      const init = this.switchInit;
      this.switchWs = null;
      clearTimeout(this.switchTimer);
      this.closeSocket();
      this.ws = ws;
      this.reuseMedia = true;
      this.lastData = this.lastMessage = performance.now();
      ws.onclose = (cev) => {
        if (this.ws !== ws) return;
        this.ws = null;
        this.retry(this.serverError || cev.reason || "connection lost");
      };
      this.pendingInit = init;
      this.onMessage(ev);
    };
    // A stream that cannot be played: keep the one on screen.
    ws.onclose = () => { if (this.switchWs === ws) this.abandonSwitch(); };
  }

  /** Gives up a switch in progress (the playing stream goes on). */
  abandonSwitch() {
    const ws = this.switchWs;
    this.switchWs = null;
    clearTimeout(this.switchTimer);
    if (ws) {
      ws.onmessage = ws.onclose = null;
      try { ws.close(); } catch { /* already closed */ }
      if (this.running && this.playing) this.stream = this.playing;
    }
  }

  connect(reason) {
    this.closeSocket();
    if (this.switchWs) {
      // Connecting anew: straight to the stream asked for.
      const sw = this.switchWs;
      this.switchWs = null;
      clearTimeout(this.switchTimer);
      sw.onmessage = sw.onclose = null;
      try { sw.close(); } catch { /* already closed */ }
    }
    if (!this.running) return;
    this.setState(this.everLive ? "reconnecting" : "connecting", reason);
    const ws = this.openSocket(this.stream);
    this.ws = ws;
    this.pendingInit = null;
    this.cameraAway = false;
    this.gotMedia = false;
    this.serverError = null;
    this.connectedAt = this.lastData = this.lastMessage = performance.now();
    ws.onmessage = (ev) => { if (this.ws === ws) this.onMessage(ev); };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.retry(this.serverError || ev.reason ||
        (ev.code === 1006 || ev.code === 1005 ? "connection lost" : `closed (${ev.code})`), !!this.serverError);
    };
  }

  closeSocket() {
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onmessage = ws.onclose = null;
      try { ws.close(); } catch { /* already closed */ }
    }
  }

  /** Closes the socket and reconnects after a jittered backoff; `refused`: the server said no. */
  retry(reason, refused = false) {
    if (!this.running) return;
    this.closeSocket();
    clearTimeout(this.retryTimer);
    this.failures++;
    const base = refused ? BACKOFF_MS[BACKOFF_MS.length - 1]
      : BACKOFF_MS[Math.min(this.failures - 1, BACKOFF_MS.length - 1)];
    const delay = base * (0.8 + 0.4 * Math.random());
    const offline = this.failures >= 3 && performance.now() - this.notLiveSince > OFFLINE_AFTER_MS;
    this.setState(refused ? "unsupported" : offline ? "offline" : "reconnecting", reason);
    this.retryTimer = setTimeout(() => this.connect(reason), delay);
  }

  onMessage(ev) {
    const now = performance.now();
    this.lastMessage = now;
    if (typeof ev.data === "string") {
      let m;
      try { m = JSON.parse(ev.data); } catch { return; }
      if (m.type === "init") {
        this.pendingInit = m;
      } else if (m.type === "status") {
        const away = m.state && !["recording", "live", "streaming"].includes(m.state);
        if (away && !this.cameraAway) this.awaySince = now;
        this.cameraAway = away;
        if (away) {
          // The recorder is reconnecting to the camera: after a grace period, call it offline.
          const long = now - Math.min(this.awaySince, this.notLiveSince) > OFFLINE_AFTER_MS;
          this.setState(long ? "offline" : "reconnecting", m.error || `camera ${m.state}`);
        }
      } else if (m.type === "error") {
        // The server refuses this stream and closes the socket; the close reports it.
        this.serverError = m.error || "the recorder refused the live stream";
      }
      return;
    }
    this.lastData = now;
    if (this.pendingInit) {
      const init = this.pendingInit;
      this.pendingInit = null;
      this.applyInit(init, ev.data);
      return;
    }
    if (!this.ms) return; // media before any init: useless
    this.cameraAway = false;
    this.gotMedia = true;
    this.queue.push(ev.data);
    this.pump();
  }

  /** A new init segment: first one, same parameters again, or a codec change. */
  applyInit(init, bytes) {
    this.playing = this.stream;
    this.info = { mime: init.mime, width: init.width, height: init.height, transcoded: !!init.transcoded,
      stream: this.stream };
    if (!window.MediaSource || !MediaSource.isTypeSupported(init.mime)) {
      this.setState("unsupported", `this browser cannot decode ${init.mime}`);
      this.closeSocket();
      this.running = false;
      clearInterval(this.timer);
      return;
    }
    const reuse = this.ms && this.ms.readyState === "open" && this.sb &&
      (this.sessionWs === this.ws || this.reuseMedia) &&
      (this.mime === init.mime || typeof this.sb.changeType === "function");
    this.reuseMedia = false;
    if (reuse) {
      this.sessionWs = this.ws;
      this.onState(this.state, this.reason, this.info);
      if (this.mime !== init.mime) this.queue.push({ changeType: init.mime });
      this.mime = init.mime;
      this.queue.push(bytes);
      this.pump();
      return;
    }
    // A fresh MediaSource for each connection: the previous frame stays on screen until now.
    this.dropMedia();
    this.mime = init.mime;
    this.sessionWs = this.ws;
    const ms = new MediaSource();
    this.ms = ms;
    this.queue = [bytes];
    this.objectUrl = URL.createObjectURL(ms);
    ms.addEventListener("sourceopen", () => {
      if (this.ms !== ms) return;
      try {
        this.sb = ms.addSourceBuffer(this.mime);
        this.sb.mode = "sequence";
      } catch (e) {
        this.retry(`cannot play ${this.mime}: ${e.message}`);
        return;
      }
      this.sb.addEventListener("updateend", () => this.afterAppend());
      this.sb.addEventListener("error", () => this.retry("media buffer error"));
      this.pump();
    }, { once: true });
    this.video.src = this.objectUrl;
  }

  dropMedia() {
    this.sb = null;
    this.queue = [];
    if (this.ms) {
      this.ms = null;
      this.video.removeAttribute("src");
      this.video.load();
    }
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
    this.objectUrl = null;
  }

  pump() {
    const sb = this.sb;
    if (!sb || sb.updating || !this.ms || this.ms.readyState !== "open") return;
    try {
      if (this.removeRange) {
        const [a, b] = this.removeRange;
        this.removeRange = null;
        sb.remove(a, b);
        return;
      }
      while (this.queue.length && this.queue[0].changeType) {
        sb.changeType(this.queue.shift().changeType);
      }
      if (!this.queue.length) return;
      // Everything that queued while the buffer was busy goes in one append.
      let n = 0;
      while (n < this.queue.length && !this.queue[n].changeType) n++;
      const parts = this.queue.splice(0, n);
      let data = parts[0];
      if (parts.length > 1) {
        const total = parts.reduce((s, p) => s + p.byteLength, 0);
        const out = new Uint8Array(total);
        let off = 0;
        for (const p of parts) { out.set(new Uint8Array(p), off); off += p.byteLength; }
        data = out.buffer;
      }
      sb.appendBuffer(data);
    } catch (e) {
      if (e.name === "QuotaExceededError") {
        this.queue = [];
        this.removeRange = [0, Math.max(0, this.video.currentTime - 1)];
      } else {
        this.retry(`append failed: ${e.message}`);
      }
    }
  }

  afterAppend() {
    const v = this.video;
    const sb = this.sb;
    if (!sb) return;
    const b = sb.buffered;
    if (b.length) {
      const start = b.start(b.length - 1);
      const end = b.end(b.length - 1);
      if (v.currentTime < start || end - v.currentTime > MAX_LAG_S) {
        v.currentTime = Math.max(start, end - 0.1); // jump to live
      }
      if (v.currentTime - b.start(0) > TRIM_AFTER_S && !this.removeRange) {
        this.removeRange = [0, v.currentTime - KEEP_BEHIND_S];
      }
    }
    if (v.paused && this.gotMedia) v.play().catch(() => {});
    if (this.gotMedia && v.readyState >= 2 && this.state !== "live") this.becameLive();
    this.pump();
  }

  becameLive() {
    this.everLive = true;
    this.liveSince = performance.now();
    this.setState("live", null);
  }

  tick() {
    if (!this.running) return;
    const now = performance.now();
    const v = this.video;
    if (this.state === "live") {
      this.notLiveSince = now;
      if (now - this.liveSince > 10000) this.failures = 0;
    }
    if (!this.ws) return; // waiting to reconnect
    if (this.cameraAway) {
      if (now - this.lastMessage > CAMERA_AWAY_MS) this.retry("no word from the recorder");
      return;
    }
    if (this.gotMedia ? now - this.lastData > STALL_MS : now - this.connectedAt > FIRST_FRAME_MS) {
      this.retry(this.gotMedia ? "video stalled" : "no video");
      return;
    }
    // A playhead that does not move while data flows: nudge it to the live edge, then give up.
    if (this.gotMedia && v.readyState > 0) {
      if (v.currentTime !== this.lastPos) {
        this.lastPos = v.currentTime;
        this.posSince = now;
      } else if (now - this.posSince > STALL_MS) {
        const b = this.sb && this.sb.buffered;
        if (b && b.length && !this.nudged) {
          this.nudged = true;
          this.posSince = now;
          v.currentTime = Math.max(b.start(b.length - 1), b.end(b.length - 1) - 0.1);
          v.play().catch(() => {});
        } else {
          this.nudged = false;
          this.retry("playback stalled");
        }
      } else {
        this.nudged = false;
      }
    }
  }
}

// The last picture of a camera's tile, handed to the camera page it opens: shown there (as the
// <video> poster) until the page's own stream shows its first frame.
const lastFrames = new Map(); // camera id -> {url, at}
const LAST_FRAME_MS = 10000;

/** Keeps the picture `video` shows of camera `cameraId` for the next page to show. */
export function rememberFrame(cameraId, video) {
  if (!video.videoWidth || video.readyState < 2) return;
  const scale = Math.min(1, 1280 / video.videoWidth);
  const c = document.createElement("canvas");
  c.width = Math.round(video.videoWidth * scale);
  c.height = Math.round(video.videoHeight * scale);
  try {
    c.getContext("2d").drawImage(video, 0, 0, c.width, c.height);
    lastFrames.set(cameraId, { url: c.toDataURL("image/jpeg", 0.85), at: Date.now() });
  } catch { /* nothing to hand over */ }
}

/** The picture remembered for camera `cameraId` moments ago, once (or null). */
export function takeFrame(cameraId) {
  const f = lastFrames.get(cameraId);
  lastFrames.delete(cameraId);
  return f && Date.now() - f.at < LAST_FRAME_MS ? f.url : null;
}
