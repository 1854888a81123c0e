// RangeSelection: the export/hold range [in, out] of the camera page's timeline. It owns the
// two handles (DOM elements over the timeline canvas, labelled IN and OUT with their local
// times, UTC on hover) and keeps them from crossing (at least MIN_RANGE_MS apart, never after
// now). Dragging a handle calls onEdge(t, false) while it moves and onEdge(t, true) on
// release, so the page can show the boundary frame; the handles are sliders for the keyboard
// too (←/→ 1 s, Shift 10 s, PageUp/PageDown 1 min). The timeline draws the shaded range from
// timeline.range; this module only positions the handles (position() on every frame).

import { el, fmtClock, fmtDate, utcTitle } from "/js/util.js";

export const MIN_RANGE_MS = 1000;
const KEY_SETTLE_MS = 350; // after the last key press on a handle, show that frame

export class RangeSelection {
  /**
   * @param {import("/js/timeline.js").Timeline} timeline
   * @param {{onEdge?: Function, onChange?: Function}} opts
   */
  constructor(timeline, { onEdge, onChange } = {}) {
    this.tl = timeline;
    this.onEdge = onEdge || (() => {});
    this.onChange = onChange || (() => {});
    this.in = null;
    this.out = null;
    this.handles = {
      in: this.makeHandle("in", "IN", "Start of the selected range"),
      out: this.makeHandle("out", "OUT", "End of the selected range"),
    };
    this.keyTimer = null;
    this.publish(true);
  }

  makeHandle(which, tag, label) {
    const text = el("span.tl-handle-time");
    const flag = el("span.tl-handle-flag", null, el("strong", null, tag), " ", text);
    const h = el(`div.tl-handle.${which}#range-${which}`, { tabIndex: 0, role: "slider", hidden: true,
      "aria-label": `${label} (${tag})`, "data-edge": which }, flag, el("span.tl-handle-grip"));
    h.text = text;
    h.addEventListener("pointerdown", (e) => this.dragStart(e, which));
    h.addEventListener("keydown", (e) => this.onKey(e, which));
    this.tl.wrap.append(h);
    return h;
  }

  /** Whether both edges are set. */
  get complete() { return this.in !== null && this.out !== null; }
  get duration() { return this.complete ? this.out - this.in : null; }

  /** Sets both edges (ordered and clamped). */
  set(a, b, { silent = false } = {}) {
    const now = Date.now();
    let lo = Math.min(a, b, now);
    let hi = Math.min(Math.max(a, b), now);
    if (hi - lo < MIN_RANGE_MS) lo = hi - MIN_RANGE_MS;
    this.in = lo;
    this.out = hi;
    this.publish(silent);
  }

  /** Marks the start at t; an end at or before it is dropped (the edges never cross). */
  markIn(t) {
    this.in = Math.min(t, Date.now() - MIN_RANGE_MS);
    if (this.out !== null && this.out - this.in < MIN_RANGE_MS) this.out = null;
    this.publish();
  }

  /** Marks the end at t; a start at or after it is dropped. */
  markOut(t) {
    this.out = Math.min(t, Date.now());
    if (this.in !== null && this.out - this.in < MIN_RANGE_MS) this.in = null;
    this.publish();
  }

  clear() { this.in = null; this.out = null; this.publish(); }

  publish(silent = false) {
    this.tl.setRange(this.in === null && this.out === null ? null : { in: this.in, out: this.out });
    for (const which of ["in", "out"]) {
      const h = this.handles[which];
      const t = this[which];
      if (t === null) { h.hidden = true; continue; }
      h.text.textContent = `${fmtDate(t)} ${fmtClock(t)}`;
      h.title = `${which === "in" ? "Start" : "End"}: ${utcTitle(t)}. Drag, or use the arrow keys.`;
      h.dataset.t = String(Math.round(t));
      h.setAttribute("aria-valuetext", `${fmtDate(t)} ${fmtClock(t)}`);
      h.setAttribute("aria-valuenow", String(Math.round(t / 1000)));
    }
    if (!silent) this.onChange(this);
  }

  /** Places the handles over the timeline (called on every animation frame). */
  position() {
    for (const which of ["in", "out"]) {
      const h = this.handles[which];
      const t = this[which];
      if (t === null) { h.hidden = true; continue; }
      const x = this.tl.xAt(t);
      const visible = x >= -1 && x <= this.tl.width + 1;
      h.hidden = !visible;
      if (visible) {
        h.style.left = `${x}px`;
        // Near the canvas edge the flag flips inward so it stays readable.
        const w = h.firstChild.offsetWidth || 120;
        h.classList.toggle("flip", which === "in" ? x < w + 4 : x > this.tl.width - w - 4);
      }
    }
  }

  /** The allowed times for edge `which`: the edges never cross and the end is never after now. */
  clampEdge(which, t) {
    const now = Date.now();
    if (which === "in") return Math.min(t, (this.out ?? now) - MIN_RANGE_MS);
    return Math.min(now, Math.max(t, (this.in ?? -Infinity) + MIN_RANGE_MS));
  }

  moveEdge(which, t) {
    this[which] = this.clampEdge(which, t);
    this.publish();
    return this[which];
  }

  dragStart(e, which) {
    if (e.button !== 0 && e.pointerType === "mouse") return;
    e.preventDefault();
    e.stopPropagation();
    const h = this.handles[which];
    h.focus({ preventScroll: true });
    h.setPointerCapture(e.pointerId);
    h.classList.add("dragging");
    this.tl.touched();
    const rect = () => this.tl.canvas.getBoundingClientRect();
    const move = (ev) => {
      const x = Math.max(0, Math.min(this.tl.width, ev.clientX - rect().left));
      const t = this.moveEdge(which, this.tl.timeAt(x));
      this.tl.touched();
      this.onEdge(t, false, which);
    };
    const end = (ev) => {
      h.removeEventListener("pointermove", move);
      h.removeEventListener("pointerup", end);
      h.removeEventListener("pointercancel", end);
      h.classList.remove("dragging");
      if (ev.type === "pointerup") move(ev);
      this.onEdge(this[which], true, which);
    };
    h.addEventListener("pointermove", move);
    h.addEventListener("pointerup", end);
    h.addEventListener("pointercancel", end);
  }

  onKey(e, which) {
    const steps = { ArrowLeft: -1000, ArrowRight: 1000, ArrowDown: -1000, ArrowUp: 1000,
      PageDown: -60e3, PageUp: 60e3 };
    let d = steps[e.key];
    if (d === undefined) return;
    if (e.shiftKey && Math.abs(d) === 1000) d *= 10;
    e.preventDefault();
    e.stopPropagation();
    const t = this.moveEdge(which, this[which] + d);
    this.tl.touched();
    this.onEdge(t, false, which);
    clearTimeout(this.keyTimer);
    this.keyTimer = setTimeout(() => this.onEdge(this[which], true, which), KEY_SETTLE_MS);
  }

  dispose() {
    clearTimeout(this.keyTimer);
    for (const h of Object.values(this.handles)) h.remove();
  }
}
