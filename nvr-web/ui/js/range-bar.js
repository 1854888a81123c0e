// RangeBar: the row under the camera page's timeline for choosing an evidence range (evidence
// and admin roles). While it is open, a drag across the timeline selects a range; it also
// offers typed start/end times (datetime-local, the browser's zone), presets (the last 1, 4,
// 8 or 24 hours), the range's exact length, Preview (play from IN to OUT), Export… and Hold….
// It reflects a RangeSelection and tells the page what the user asked for through callbacks.

import { el, iconButton, fmtSpan, localInput, fromLocalInput, utcTitle, toast } from "/js/util.js";
import { MIN_RANGE_MS } from "/js/range-select.js";

export const MAX_EXPORT_MS = 24 * 3600e3;
const PRESETS = [1, 4, 8, 24];

export class RangeBar {
  /**
   * @param {import("/js/range-select.js").RangeSelection} range
   * @param {{onRange: Function, onPreview: Function, onExport: Function, onHold: Function,
   *          onToggle: Function}} opts  onRange(start, end) after a preset or typed times.
   */
  constructor(range, opts) {
    this.range = range;
    this.opts = opts;
    this.inInput = el("input#range-in-input", { type: "datetime-local", step: "1", "aria-label": "Range start (IN)" });
    this.outInput = el("input#range-out-input", { type: "datetime-local", step: "1", "aria-label": "Range end (OUT)" });
    for (const i of [this.inInput, this.outInput]) i.addEventListener("change", () => this.typed());
    this.duration = el("span.range-duration#range-duration", { "aria-live": "polite" });
    const presets = el("div.segmented.range-presets", { role: "group", "aria-label": "Last hours" },
      ...PRESETS.map((h) => el("button.btn", { type: "button", title: `The last ${h} hour${h > 1 ? "s" : ""}`,
        "data-preset": String(h), on: { click: () => this.preset(h) } }, `${h} h`)));
    this.previewBtn = iconButton("play", "Preview", () => opts.onPreview(), { cls: "subtle" });
    this.previewBtn.title = "Play the range from IN to OUT";
    this.exportBtn = iconButton("export", "Export…", () => opts.onExport(), { cls: "primary" });
    this.exportBtn.id = "btn-export";
    this.holdBtn = iconButton("hold", "Hold…", () => opts.onHold());
    this.holdBtn.id = "btn-hold";
    this.holdBtn.title = "Keep this range from retention until released";
    const closeBtn = iconButton("close", "Close the range (Esc)", () => this.close(), { iconOnly: true, cls: "subtle" });
    this.el = el("div.range-bar#range-bar", { role: "group", "aria-label": "Evidence range", hidden: true },
      el("div.group", null, el("span.range-tag.in", null, "IN"), this.inInput,
        el("span.range-tag.out", null, "OUT"), this.outInput, this.duration),
      el("div.group", null, el("span.muted.small", null, "Last"), presets),
      el("div.group.push", null, this.previewBtn, this.holdBtn, this.exportBtn, closeBtn));
    this.update();
  }

  get isOpen() { return !this.el.hidden; }

  open() {
    if (this.isOpen) return;
    this.el.hidden = false;
    this.opts.onToggle(true);
  }

  /** Closes the bar and forgets the range. */
  close() {
    if (!this.isOpen) return;
    this.el.hidden = true;
    this.range.clear();
    this.opts.onToggle(false);
  }

  toggle() { if (this.isOpen) this.close(); else this.open(); }

  /** Reflects the selection: inputs, length, which actions are possible. */
  update() {
    const r = this.range;
    for (const [input, t] of [[this.inInput, r.in], [this.outInput, r.out]]) {
      if (document.activeElement === input) continue;
      input.value = t === null ? "" : localInput(t);
      input.title = t === null ? "" : utcTitle(t);
    }
    const d = r.duration;
    const tooLong = d !== null && d > MAX_EXPORT_MS;
    // Without a whole range, the same place says how to make one.
    this.duration.textContent = d !== null ? fmtSpan(d) : r.in !== null ? "IN set: ] marks OUT"
      : r.out !== null ? "OUT set: [ marks IN" : "Drag on the timeline, or [ ] at the playhead";
    this.duration.classList.toggle("hint", d === null);
    this.duration.classList.toggle("bad-text", tooLong);
    this.duration.dataset.ms = d === null ? "" : String(Math.round(d));
    this.previewBtn.disabled = !r.complete;
    this.holdBtn.disabled = !r.complete;
    this.exportBtn.disabled = !r.complete || tooLong;
    this.exportBtn.title = tooLong ? "An export covers at most 24 hours: shorten the range"
      : r.complete ? "Export this range as a signed evidence bundle" : "Select a range first";
  }

  preset(hours) {
    const end = Date.now();
    this.range.set(end - hours * 3600e3, end);
    this.opts.onRange(this.range.in, this.range.out);
  }

  typed() {
    const a = fromLocalInput(this.inInput.value);
    const b = fromLocalInput(this.outInput.value);
    if (Number.isNaN(a) || Number.isNaN(b)) return;
    if (b - a < MIN_RANGE_MS) {
      toast("The end of the range must come after its start.", "warn");
      this.update();
      return;
    }
    if (a > Date.now()) { toast("The range cannot start in the future.", "warn"); this.update(); return; }
    this.range.set(a, b);
    this.opts.onRange(this.range.in, this.range.out);
  }
}
