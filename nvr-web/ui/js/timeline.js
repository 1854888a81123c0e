// Timeline: the horizontal time axis of the camera page, drawn on a canvas. Recorded runs are
// solid bars, gaps are plain with a hairline where recording stops and starts, days not yet
// loaded are hatched, the future is shaded after a "now" edge, and the playhead is a line with
// a handle. Zoom from 24 h down to 1 min (buttons, Ctrl+wheel or trackpad pinch anchored at the
// cursor, two-finger pinch anchored between the fingers); pan by dragging the background or
// with the wheel. A click seeks; dragging the playhead scrubs (onScrub while moving,
// onScrubEnd on release). Hovering shows the time and a thumbnail. After the user touches it,
// the timeline leaves the view alone for TOUCH_QUIET_MS before following playback again.
// Evidence: active holds are an amber band along the bottom of the track, exports a violet
// line along its top, and a selected range [in, out] is shaded (its handles are DOM elements
// owned by range-select.js). When `selectDrag(event)` says so (range mode, or Shift held), a
// drag on the background selects a range (onSelect(a, b, final)) instead of panning.
// Motion (motion.js): a strip along the top of the track, its opacity the intensity of motion
// per pixel column (yellow; red when searching a region).

import { el, fmtClock, fmtDate, utcTitle } from "/js/util.js";

export const MIN_SPAN = 60e3;
export const MAX_SPAN = 24 * 3600e3;
const TOUCH_QUIET_MS = 3000;
const HEIGHT = 72;
// [major, minor] tick steps in ms.
const STEPS = [[5e3, 1e3], [10e3, 2e3], [30e3, 5e3], [60e3, 10e3], [300e3, 60e3], [600e3, 120e3],
  [900e3, 300e3], [1800e3, 300e3], [3600e3, 600e3], [7200e3, 1800e3], [10800e3, 3600e3],
  [21600e3, 3600e3], [43200e3, 7200e3]];
const COLORS = {
  bg: "#15181d", track: "#1f242b", run: "#2f7de1", runRec: "#49a3ff", edge: "#9cc8ff",
  future: "#0c0e11", now: "#ff5d5d", tick: "#3a424d", label: "#9aa4b1", playhead: "#ffd34d",
  hatch: "#262c35", text: "#c8d0da", hold: "#f0b429", holdEdge: "#8a6410", export: "#b48cff",
  range: "rgba(95, 224, 200, 0.2)", rangeEdge: "#5fe0c8", motion: "#e8e84a", motionRegion: "#ff4d5e",
};

export class Timeline {
  /**
   * @param {HTMLElement} container
   * @param {{onSeek?: Function, onScrub?: Function, onScrubEnd?: Function, onView?: Function,
   *          onHover?: Function, selectDrag?: Function, onSelect?: Function}} opts
   */
  constructor(container, opts = {}) {
    this.opts = opts;
    this.canvas = el("canvas.timeline-canvas", { tabIndex: 0, role: "slider",
      "aria-label": "Timeline: click to play from a time, drag to move (to select a range: Shift+drag, or drag with the range bar open), Ctrl+wheel to zoom",
      "aria-valuemin": "0", "aria-valuemax": "0", "aria-valuenow": "0" });
    this.hover = el("div.timeline-hover", { hidden: true, "aria-hidden": "true" },
      el("img.thumb", { alt: "" }), el("span.time"), el("span.hold-note", { hidden: true }));
    this.hoverThumb = this.hover.querySelector("img");
    this.hoverTime = this.hover.querySelector(".time");
    this.hoverHold = this.hover.querySelector(".hold-note");
    this.wrap = el("div.timeline", null, this.canvas, this.hover);
    container.append(this.wrap);
    this.span = 3600e3;
    this.now = Date.now();
    this.start = this.now - this.span * 0.8;
    this.runs = [];
    this.loaded = [];
    this.holds = [];    // [{id, start, end, case}] of this camera, active
    this.exports = [];  // [{id, start, end, state}] including this camera
    this.range = null;  // {in, out} (either may be null) of the range selection
    this.motion = null; // {start, end, buckets: [0..1], region} from motion.js
    this.playhead = null;
    this.touchedAt = 0;
    this.pointers = new Map();
    this.mode = null;
    this.width = 0;
    this.bindEvents();
    this.ro = new ResizeObserver(() => this.resize());
    this.ro.observe(this.wrap);
    this.resize();
  }

  dispose() { this.ro.disconnect(); }

  get end() { return this.start + this.span; }
  msPerPx() { return this.span / Math.max(1, this.width); }
  timeAt(x) { return this.start + x * this.msPerPx(); }
  xAt(t) { return (t - this.start) / this.msPerPx(); }

  resize() {
    const w = this.wrap.clientWidth;
    if (!w) return;
    this.width = w;
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(w * dpr);
    this.canvas.height = Math.round(HEIGHT * dpr);
    this.canvas.style.height = `${HEIGHT}px`;
    this.draw();
  }

  setRuns(runs, loaded) { this.runs = runs; this.loaded = loaded || this.loaded; }
  setHolds(holds) { this.holds = holds; }
  setExports(exports) { this.exports = exports; }
  setRange(range) { this.range = range; }
  setMotion(motion) { this.motion = motion; }
  setPlayhead(t) { this.playhead = t; }
  setNow(t) { this.now = t; }
  touched() { this.touchedAt = performance.now(); }
  recentlyTouched() { return performance.now() - this.touchedAt < TOUCH_QUIET_MS || this.mode !== null; }

  /** Moves the view so that it starts at `start` (clamped: the "now" edge stays in reach). */
  setView(start, span = this.span) {
    this.span = Math.min(MAX_SPAN, Math.max(MIN_SPAN, span));
    const maxStart = this.now + this.span * 0.3 - this.span;
    this.start = Math.min(start, maxStart);
    if (this.opts.onView) this.opts.onView(this.start, this.end);
  }

  centerOn(t) { this.setView(t - this.span / 2); }

  /** Zooms by `factor` (< 1 zooms in) keeping time `anchor` at the same place on screen. */
  zoomAt(factor, anchor = this.start + this.span / 2) {
    const span = Math.min(MAX_SPAN, Math.max(MIN_SPAN, this.span * factor));
    const frac = (anchor - this.start) / this.span;
    this.setView(anchor - frac * span, span);
  }
  canZoomIn() { return this.span > MIN_SPAN + 1; }
  canZoomOut() { return this.span < MAX_SPAN - 1; }

  /** Keeps `t` in view while the user leaves the timeline alone. `live` puts it near the right. */
  follow(t, live) {
    if (t === null || this.recentlyTouched()) return;
    const lo = this.start + this.span * 0.05;
    const hi = this.start + this.span * (live ? 0.97 : 0.9);
    if (live) {
      if (t < lo || t > hi) this.setView(t - this.span * 0.85);
    } else if (t < lo || t > hi) {
      this.setView(t - this.span * 0.3);
    }
  }

  showHoverThumb(url) {
    if (url) { this.hoverThumb.src = url; this.hoverThumb.hidden = false; }
    else this.hoverThumb.hidden = true;
  }

  bindEvents() {
    const c = this.canvas;
    const pos = (e) => { const r = c.getBoundingClientRect(); return e.clientX - r.left; };
    c.addEventListener("pointerdown", (e) => {
      if (e.button !== 0 && e.pointerType === "mouse") return;
      c.setPointerCapture(e.pointerId);
      const x = pos(e);
      this.pointers.set(e.pointerId, x);
      this.touched();
      if (this.pointers.size === 2) {
        const [a, b] = [...this.pointers.values()];
        this.mode = "pinch";
        this.pinch = { d0: Math.max(10, Math.abs(a - b)), span0: this.span, anchor: this.timeAt((a + b) / 2), mid: (a + b) / 2 };
        return;
      }
      if (this.pointers.size > 2) return;
      const near = this.playhead !== null && Math.abs(this.xAt(this.playhead) - x) <= (e.pointerType === "touch" ? 18 : 8);
      const select = !near && this.opts.selectDrag && this.opts.selectDrag(e);
      this.mode = near ? "scrub" : select ? "select-press" : "press";
      this.x0 = x;
      this.start0 = this.start;
      if (near) this.scrubTo(x);
    });
    c.addEventListener("pointermove", (e) => {
      const x = pos(e);
      if (this.pointers.has(e.pointerId)) this.pointers.set(e.pointerId, x);
      if (this.mode === "pinch" && this.pointers.size >= 2) {
        const [a, b] = [...this.pointers.values()];
        const span = this.pinch.span0 * this.pinch.d0 / Math.max(10, Math.abs(a - b));
        const clamped = Math.min(MAX_SPAN, Math.max(MIN_SPAN, span));
        const mid = (a + b) / 2;
        this.setView(this.pinch.anchor - mid * clamped / this.width, clamped);
        this.touched();
        return;
      }
      if (this.mode === "press" && Math.abs(x - this.x0) > 5) this.mode = "pan";
      if (this.mode === "select-press" && Math.abs(x - this.x0) > 5) this.mode = "select";
      if (this.mode === "select") {
        this.selectTo(x, false);
      } else if (this.mode === "pan") {
        this.setView(this.start0 - (x - this.x0) * this.msPerPx());
        this.touched();
      } else if (this.mode === "scrub") {
        this.scrubTo(x);
      }
      if (e.pointerType !== "touch" || this.mode === "scrub") this.showHover(x);
    });
    const finish = (e, cancelled) => {
      if (!this.pointers.has(e.pointerId)) return;
      this.pointers.delete(e.pointerId);
      const x = pos(e);
      const mode = this.mode;
      if (this.pointers.size > 0) { if (mode === "pinch") this.mode = "pinch-end"; return; }
      this.mode = null;
      this.touched();
      if (cancelled) return;
      if ((mode === "press" || mode === "select-press") && this.opts.onSeek) this.opts.onSeek(this.clampT(this.timeAt(x)));
      if (mode === "select") this.selectTo(x, true);
      if (mode === "scrub" && this.opts.onScrubEnd) this.opts.onScrubEnd(this.clampT(this.timeAt(x)));
      if (e.pointerType === "touch") this.hideHover();
    };
    c.addEventListener("pointerup", (e) => finish(e, false));
    c.addEventListener("pointercancel", (e) => finish(e, true));
    c.addEventListener("pointerleave", (e) => { if (e.pointerType === "mouse" && !this.mode) this.hideHover(); });
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      this.touched();
      const unit = e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? this.width : 1;
      if (e.ctrlKey || e.metaKey) {
        this.zoomAt(Math.exp(e.deltaY * unit * 0.002), this.timeAt(pos(e)));
      } else {
        const d = Math.abs(e.deltaX) > Math.abs(e.deltaY) ? e.deltaX : e.deltaY;
        this.setView(this.start + d * unit * this.msPerPx());
      }
      this.showHover(pos(e));
    }, { passive: false });
  }

  clampT(t) { return Math.min(t, this.now); }

  /** A range drag from x0 to x: onSelect(earlier, later, final, movingEdge). */
  selectTo(x, final) {
    const a = this.clampT(this.timeAt(this.x0));
    const b = this.clampT(this.timeAt(Math.max(0, Math.min(this.width, x))));
    if (this.opts.onSelect) this.opts.onSelect(Math.min(a, b), Math.max(a, b), final, b);
  }

  scrubTo(x) {
    const t = this.clampT(this.timeAt(Math.max(0, Math.min(this.width, x))));
    this.playhead = t;
    if (this.opts.onScrub) this.opts.onScrub(t);
  }

  showHover(x) {
    const t = this.timeAt(x);
    if (t > this.now) { this.hideHover(); return; }
    this.hover.hidden = false;
    const w = this.hover.offsetWidth || 170;
    this.hover.style.left = `${Math.max(0, Math.min(this.width - w, x - w / 2))}px`;
    this.hoverTime.textContent = `${fmtDate(t)} ${fmtClock(t)}`;
    this.hover.title = utcTitle(t);
    this.hoverX = x;
    const hold = this.holds.find((h) => h.start <= t && t < h.end);
    this.hoverHold.hidden = !hold;
    if (hold) this.hoverHold.textContent = `On hold${hold.case ? `: case ${hold.case}` : ""}`;
    const inRun = this.runs.some((r) => r.start <= t && t < r.end);
    if (this.opts.onHover) this.opts.onHover(inRun ? t : null);
    if (!inRun) this.hoverThumb.hidden = true;
  }

  hideHover() { this.hover.hidden = true; this.hoverX = null; if (this.opts.onHover) this.opts.onHover(null); }

  draw() {
    const ctx = this.canvas.getContext("2d");
    const W = this.width;
    if (!W) return;
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const H = HEIGHT;
    const trackTop = 24;
    const trackH = H - trackTop - 6;
    ctx.fillStyle = COLORS.bg;
    ctx.fillRect(0, 0, W, H);
    ctx.fillStyle = COLORS.track;
    ctx.fillRect(0, trackTop, W, trackH);

    // Days not loaded yet: hatched.
    ctx.save();
    ctx.beginPath();
    ctx.rect(0, trackTop, W, trackH);
    ctx.clip();
    ctx.strokeStyle = COLORS.hatch;
    ctx.lineWidth = 1;
    const known = this.loaded.map(([a, b]) => [this.xAt(a), this.xAt(b)]);
    for (let x = -trackH; x < W; x += 8) {
      const mx = x + trackH / 2;
      if (known.some(([a, b]) => mx >= a && mx <= b)) continue;
      ctx.beginPath();
      ctx.moveTo(x, trackTop + trackH);
      ctx.lineTo(x + trackH, trackTop);
      ctx.stroke();
    }
    ctx.restore();

    // Ticks and labels.
    const mpp = this.msPerPx();
    const [major, minor] = STEPS.find(([m]) => m / mpp >= 90) || STEPS[STEPS.length - 1];
    const tz = -new Date(this.start).getTimezoneOffset() * 60e3;
    const first = (step) => Math.ceil((this.start + tz) / step) * step - tz;
    ctx.fillStyle = COLORS.tick;
    for (let t = first(minor); t < this.end; t += minor) ctx.fillRect(Math.round(this.xAt(t)), trackTop - 4, 1, 4);
    ctx.font = "11px system-ui, sans-serif";
    ctx.textBaseline = "alphabetic";
    for (let t = first(major); t < this.end; t += major) {
      const x = Math.round(this.xAt(t));
      ctx.fillStyle = COLORS.tick;
      ctx.fillRect(x, 14, 1, trackTop - 14 + trackH);
      const d = new Date(t);
      const midnight = d.getHours() === 0 && d.getMinutes() === 0 && d.getSeconds() === 0;
      ctx.fillStyle = midnight ? COLORS.text : COLORS.label;
      const label = midnight ? fmtDate(t) : fmtClock(t, { seconds: major < 60e3 });
      ctx.fillText(label, x + 3, 12);
    }

    // Recorded runs.
    for (const r of this.runs) {
      if (r.end < this.start || r.start > this.end) continue;
      const x0 = Math.max(-1, this.xAt(r.start));
      const x1 = Math.min(W + 1, this.xAt(r.end));
      ctx.fillStyle = r.recording ? COLORS.runRec : COLORS.run;
      ctx.fillRect(x0, trackTop + 2, Math.max(1, x1 - x0), trackH - 4);
      if (r.recording && this.now > r.end) {
        // Still recording: what is written but not listed yet, up to now.
        ctx.globalAlpha = 0.45;
        ctx.fillRect(x1, trackTop + 2, Math.max(0, Math.min(W, this.xAt(this.now)) - x1), trackH - 4);
        ctx.globalAlpha = 1;
      }
      ctx.fillStyle = COLORS.edge;
      if (r.start >= this.start) ctx.fillRect(Math.round(x0), trackTop, 1, trackH);
      if (r.end <= this.end && !r.recording) ctx.fillRect(Math.round(x1) - 1, trackTop, 1, trackH);
    }

    this.drawMotion(ctx, trackTop);
    this.drawEvidence(ctx, trackTop, trackH, H);

    // The future, and the "now" edge.
    const xn = this.xAt(this.now);
    if (xn < W) {
      ctx.fillStyle = COLORS.future;
      ctx.globalAlpha = 0.85;
      ctx.fillRect(Math.max(0, xn), 14, W - Math.max(0, xn), H - 14);
      ctx.globalAlpha = 1;
      if (xn >= 0) {
        ctx.fillStyle = COLORS.now;
        ctx.fillRect(Math.round(xn), 14, 2, H - 14);
        ctx.font = "bold 10px system-ui, sans-serif";
        ctx.fillText("NOW", Math.min(W - 28, xn + 4), trackTop + 12);
      }
    }

    const inView = this.runs.some((r) => r.end > this.start && r.start < Math.min(this.end, this.now));
    const allLoaded = this.loaded.length && this.loaded.some(([a, b]) => a <= this.start && b >= Math.min(this.end, this.now));
    if (!inView && allLoaded) {
      ctx.fillStyle = COLORS.label;
      ctx.font = "12px system-ui, sans-serif";
      const msg = "No recordings in this range";
      const tw = ctx.measureText(msg).width;
      ctx.fillText(msg, Math.max(4, Math.min(W - tw - 4, Math.min(W, xn) / 2 - tw / 2)), trackTop + trackH / 2 + 4);
    }

    // Hover line and playhead.
    if (this.hoverX !== null && this.hoverX !== undefined && !this.hover.hidden) {
      ctx.fillStyle = "rgba(255,255,255,0.35)";
      ctx.fillRect(Math.round(this.hoverX), trackTop, 1, trackH);
    }
    if (this.playhead !== null) {
      const x = Math.round(this.xAt(this.playhead));
      if (x >= -6 && x <= W + 6) {
        ctx.fillStyle = COLORS.playhead;
        ctx.fillRect(x - 1, 14, 2, H - 14);
        ctx.beginPath();
        ctx.moveTo(x - 6, 14);
        ctx.lineTo(x + 6, 14);
        ctx.lineTo(x, 21);
        ctx.closePath();
        ctx.fill();
      }
      this.updateAria();
    }
    this.canvas.dataset.viewStart = String(Math.round(this.start));
    this.canvas.dataset.viewEnd = String(Math.round(this.end));
  }

  /** The motion strip: one bar per bucket of the searched range, as opaque as it is intense. */
  drawMotion(ctx, trackTop) {
    const m = this.motion;
    let marked = 0;
    if (m && m.buckets.length) {
      const n = m.buckets.length;
      const per = (m.end - m.start) / n;
      ctx.fillStyle = m.region ? COLORS.motionRegion : COLORS.motion;
      for (let i = 0; i < n; i++) {
        const v = m.buckets[i];
        if (!v) continue;
        const t0 = m.start + per * i;
        if (t0 + per < this.start || t0 > this.end) continue;
        const x0 = this.xAt(t0);
        ctx.globalAlpha = 0.35 + 0.65 * Math.min(1, v * 2);
        ctx.fillRect(x0, trackTop + 4, Math.max(1, this.xAt(t0 + per) - x0), 10);
        marked++;
      }
      ctx.globalAlpha = 1;
    }
    this.canvas.dataset.motionMarks = String(marked);
    this.canvas.dataset.motionRegion = String(Boolean(m && m.region));
  }

  /** Holds (amber band at the bottom), exports (violet line at the top), the selected range. */
  drawEvidence(ctx, trackTop, trackH, H) {
    const W = this.width;
    const span = (a, b) => [Math.max(-1, this.xAt(a)), Math.min(W + 1, this.xAt(b))];
    const drawn = [];
    for (const h of this.holds) {
      if (h.end < this.start || h.start > this.end) continue;
      const [x0, x1] = span(h.start, h.end);
      const y = trackTop + trackH - 10;
      ctx.fillStyle = COLORS.hold;
      ctx.fillRect(x0, y, Math.max(2, x1 - x0), 8);
      ctx.fillStyle = COLORS.holdEdge;
      ctx.fillRect(Math.round(x0), y - 3, 1, 11);
      ctx.fillRect(Math.round(x1) - 1, y - 3, 1, 11);
      if (x1 - x0 > 40) {
        ctx.font = "bold 8px system-ui, sans-serif";
        ctx.fillText("HOLD", Math.max(2, x0) + 3, y + 7);
      }
      drawn.push(h.id);
    }
    this.canvas.dataset.holds = drawn.join(",");
    for (const e of this.exports) {
      if (e.end < this.start || e.start > this.end) continue;
      const [x0, x1] = span(e.start, e.end);
      ctx.fillStyle = COLORS.export;
      ctx.globalAlpha = e.state === "running" ? 0.5 : 1;
      ctx.fillRect(x0, trackTop, Math.max(2, x1 - x0), 3);
      ctx.globalAlpha = 1;
    }
    const r = this.range;
    if (r && r.in !== null && r.out !== null) {
      const [x0, x1] = span(r.in, r.out);
      ctx.fillStyle = COLORS.range;
      ctx.fillRect(x0, 14, Math.max(1, x1 - x0), H - 14);
      ctx.fillStyle = COLORS.rangeEdge;
      ctx.fillRect(x0, H - 3, Math.max(1, x1 - x0), 3);
    }
  }

  updateAria() {
    const sec = Math.floor(this.playhead / 1000);
    if (sec === this.ariaSec) return;
    this.ariaSec = sec;
    this.canvas.setAttribute("aria-valuemin", String(Math.round(this.start / 1000)));
    this.canvas.setAttribute("aria-valuemax", String(Math.round(this.end / 1000)));
    this.canvas.setAttribute("aria-valuenow", String(sec));
    this.canvas.setAttribute("aria-valuetext", `${fmtDate(this.playhead)} ${fmtClock(this.playhead)}`);
  }
}
