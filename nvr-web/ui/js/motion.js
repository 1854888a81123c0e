// Motion on the camera page: the timeline's motion strip (the intensity of motion per pixel
// column of the visible range, from GET /api/cameras/{id}/motion?buckets=), previous / next
// motion (buttons, M and Shift+M), and region search as Nx does it: "Search region" (R) lets
// the user drag a rectangle on the picture (Esc leaves the mode); the strip then shows motion
// in that rectangle only (red), and a list of the hits in the visible range, each with a
// thumbnail and its time, jumps there (and, for evidence roles, takes the hit's range into
// the export dialog). The panel says what was searched and when the index is partial.

import { api } from "/js/api.js";
import { el, iconButton, fmtClock, fmtDateTime, utcTitle, toast } from "/js/util.js";

const REFRESH_MS = 10000;        // the strip of a view that includes now refreshes this often
const DEBOUNCE_MS = 250;         // after the view moves
const MAX_RANGE_MS = 31 * 86400e3; // the API's longest search
const MAX_BUCKETS = 4096;
const THUMBS = 12;               // hits with a thumbnail (each is a snapshot request)
const HITS_SHOWN = 100;
const EXPORT_MARGIN_MS = 2000;   // a hit's export starts a little before and ends a little after
const MIN_REGION = 0.01;         // a drag smaller than 1% of the picture is a click, not a region

export class MotionSearch {
  /**
   * @param {number} cameraId
   * @param {import("/js/timeline.js").Timeline} tl
   * @param {HTMLElement} stage the element holding the video
   * @param {{video: () => HTMLVideoElement, onJump: (t: number) => void,
   *          onExport?: (a: number, b: number) => void, now: () => number}} opts
   */
  constructor(cameraId, tl, stage, opts) {
    this.id = cameraId;
    this.tl = tl;
    this.stage = stage;
    this.opts = opts;
    this.region = null;      // [x0, y0, x1, y1] in 0..1 picture coordinates
    this.drawing = false;
    this.seq = 0;
    this.timer = null;
    this.prevBtn = iconButton("prev", "Previous motion (Shift+M)", () => this.step(-1), { iconOnly: true });
    this.nextBtn = iconButton("next", "Next motion (M)", () => this.step(1), { iconOnly: true });
    this.prevBtn.id = "btn-prev-motion";
    this.nextBtn.id = "btn-next-motion";
    this.regionBtn = iconButton("range", "Search region", () => this.toggleMode(), { cls: "region-btn" });
    this.regionBtn.id = "btn-region";
    this.regionBtn.title = "Search region (R): drag a rectangle on the picture; the timeline then shows motion there only";
    this.regionBtn.setAttribute("aria-pressed", "false");

    this.rect = el("div.region-rect#region-rect", { hidden: true });
    this.overlay = el("div.region-overlay#region-overlay", { hidden: true, title: "Drag a rectangle where to look for motion (Esc: cancel)" });
    this.stage.append(this.rect, this.overlay);
    this.bindOverlay();

    this.summary = el("p.motion-summary#motion-summary", { role: "status" });
    this.hits = el("ol.motion-hits#motion-hits");
    const clear = iconButton("close", "Clear the region", () => this.clearRegion(), { cls: "subtle" });
    this.panel = el("section.motion-panel#motion-panel", { hidden: true, "aria-label": "Motion in the region" },
      el("div.motion-head", null, this.summary, clear), this.hits);
    this.refreshTimer = setInterval(() => {
      if (this.tl.end > this.opts.now() - REFRESH_MS) this.refresh();
    }, REFRESH_MS);
  }

  dispose() {
    clearInterval(this.refreshTimer);
    clearTimeout(this.timer);
    this.overlay.remove();
    this.rect.remove();
  }

  /** The visible range moved: search it again shortly. */
  viewChanged() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.refresh(), DEBOUNCE_MS);
  }

  regionParam() {
    return this.region ? `&region=${this.region.map((v) => v.toFixed(4)).join(",")}` : "";
  }

  /** Searches the visible range: the strip's buckets and, with a region, the list of hits. */
  async refresh() {
    const start = Math.max(this.tl.start, this.tl.end - MAX_RANGE_MS);
    const end = Math.min(this.tl.end, this.opts.now());
    if (end <= start) { this.tl.setMotion(null); return; }
    const buckets = Math.max(1, Math.min(MAX_BUCKETS, Math.round(this.tl.width * (end - start) / (this.tl.end - this.tl.start))));
    const seq = ++this.seq;
    let r;
    try {
      r = await api("GET", `/api/cameras/${this.id}/motion?start=${iso(start)}&end=${iso(end)}&buckets=${buckets}${this.regionParam()}`);
    } catch (e) {
      if (seq === this.seq && this.region) this.summary.textContent = `Motion search failed: ${e.message}`;
      return;
    }
    if (seq !== this.seq) return;
    this.tl.setMotion({ start, end, buckets: r.buckets, region: this.region !== null });
    if (this.region) this.showHits(r, start, end);
  }

  showHits(r, start, end) {
    const hits = r.intervals.map((i) => ({ start: Date.parse(i.start), end: Date.parse(i.end), peak: i.peak }));
    const missing = r.not_indexed.reduce((s, n) => s + (Date.parse(n.end) - Date.parse(n.start)), 0);
    const [x0, y0, x1, y1] = this.region.map((v) => Math.round(v * 100));
    this.summary.replaceChildren(
      `${hits.length} ${hits.length === 1 ? "moment" : "moments"} with motion in the region `,
      el("span.muted", null, `(${x0}–${x1}% across, ${y0}–${y1}% down)`),
      ` from ${fmtDateTime(start)} to ${fmtDateTime(end)}`,
      missing > 0 ? el("span.partial", { title: "Footage recorded before motion analysis ran, or while it was behind: nvr motion reindex indexes it." },
        ` · partial: ${Math.round(missing / 60e3)} min of recording not indexed`) : "",
      hits.length > HITS_SHOWN ? ` · the first ${HITS_SHOWN} are listed` : "");
    this.summary.dataset.hits = String(hits.length);
    this.hits.replaceChildren(...hits.slice(0, HITS_SHOWN).map((h, i) => this.hitItem(h, i)));
  }

  hitItem(h, i) {
    const secs = Math.max(1, Math.round((h.end - h.start) / 1000));
    const jump = el("button.hit", { type: "button", title: utcTitle(h.start), "data-start": String(h.start) },
      i < THUMBS ? el("img.hit-thumb", { alt: "", loading: "lazy",
        src: `/api/cameras/${this.id}/snapshot.jpg?at=${iso(h.start + 500)}&width=160` }) : null,
      el("span.hit-time", null, fmtClock(h.start)),
      el("span.muted", null, `${secs} s · ${(h.peak * 100).toFixed(1)}%`));
    jump.addEventListener("click", () => this.opts.onJump(h.start));
    const li = el("li", null, jump);
    if (this.opts.onExport) {
      const ex = iconButton("export", "Export this range…", () =>
        this.opts.onExport(h.start - EXPORT_MARGIN_MS, h.end + EXPORT_MARGIN_MS), { iconOnly: true, cls: "subtle" });
      li.append(ex);
    }
    return li;
  }

  /** Jumps to the start of the next (dir 1) or previous (dir -1) moment with motion. */
  async step(dir, from = null) {
    const t = from ?? this.opts.time() ?? this.opts.now();
    const now = this.opts.now();
    const [a, b] = dir > 0 ? [t + 1000, Math.min(now, t + MAX_RANGE_MS)] : [Math.max(t - MAX_RANGE_MS, 0), t - 1000];
    if (b <= a) { toast("No later motion.", "warn"); return; }
    try {
      const r = await api("GET", `/api/cameras/${this.id}/motion?start=${iso(a)}&end=${iso(b)}${this.regionParam()}`);
      const starts = r.intervals.map((i) => Date.parse(i.start)).filter((s) => (dir > 0 ? s > t + 500 : s < t - 500));
      const hit = dir > 0 ? starts[0] : starts[starts.length - 1];
      if (hit === undefined) {
        toast(`No ${dir > 0 ? "later" : "earlier"} motion${this.region ? " in the region" : ""} within 31 days.`, "warn");
        return;
      }
      this.tl.centerOn(hit);
      this.tl.touched();
      this.opts.onJump(hit);
    } catch (e) {
      toast(`Motion search failed: ${e.message}`, "bad");
    }
  }

  toggleMode() { if (this.drawing) this.leaveMode(); else this.enterMode(); }

  enterMode() {
    this.drawing = true;
    this.overlay.hidden = false;
    this.stage.dataset.regionMode = "true";
    this.regionBtn.setAttribute("aria-pressed", "true");
    toast("Drag a rectangle on the picture where to look for motion (Esc: cancel).", "info", 4000);
  }

  leaveMode() {
    this.drawing = false;
    this.overlay.hidden = true;
    delete this.stage.dataset.regionMode;
    this.regionBtn.setAttribute("aria-pressed", String(this.region !== null));
  }

  clearRegion() {
    this.region = null;
    this.rect.hidden = true;
    this.panel.hidden = true;
    this.regionBtn.setAttribute("aria-pressed", "false");
    this.refresh();
  }

  /** Esc: leaves the drawing mode, else clears the region. Returns whether it did anything. */
  escape() {
    if (this.drawing) { this.leaveMode(); return true; }
    if (this.region) { this.clearRegion(); return true; }
    return false;
  }

  /** The picture's box inside the stage (the video is letterboxed, `object-fit: contain`). */
  pictureBox() {
    const v = this.opts.video();
    const r = v.getBoundingClientRect();
    const vw = v.videoWidth || r.width;
    const vh = v.videoHeight || r.height;
    const scale = Math.min(r.width / vw, r.height / vh);
    const w = vw * scale;
    const h = vh * scale;
    return { left: r.left + (r.width - w) / 2, top: r.top + (r.height - h) / 2, width: w, height: h };
  }

  bindOverlay() {
    let p0 = null;
    const frac = (e) => {
      const b = this.pictureBox();
      const c = (v) => Math.min(1, Math.max(0, v));
      return [c((e.clientX - b.left) / b.width), c((e.clientY - b.top) / b.height)];
    };
    const place = (rg) => {
      const b = this.pictureBox();
      const s = this.stage.getBoundingClientRect();
      Object.assign(this.rect.style, {
        left: `${b.left - s.left + rg[0] * b.width}px`, top: `${b.top - s.top + rg[1] * b.height}px`,
        width: `${(rg[2] - rg[0]) * b.width}px`, height: `${(rg[3] - rg[1]) * b.height}px`,
      });
      this.rect.hidden = false;
    };
    const box = (a, b) => [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[0], b[0]), Math.max(a[1], b[1])];
    this.overlay.addEventListener("pointerdown", (e) => {
      this.overlay.setPointerCapture(e.pointerId);
      p0 = frac(e);
      e.preventDefault();
      e.stopPropagation();
    });
    this.overlay.addEventListener("pointermove", (e) => { if (p0) place(box(p0, frac(e))); });
    this.overlay.addEventListener("pointerup", (e) => {
      if (!p0) return;
      const rg = box(p0, frac(e));
      p0 = null;
      if (rg[2] - rg[0] < MIN_REGION || rg[3] - rg[1] < MIN_REGION) { this.rect.hidden = this.region === null; return; }
      this.region = rg;
      place(rg);
      this.leaveMode();
      this.panel.hidden = false;
      this.summary.textContent = "Searching…";
      this.refresh();
    });
    this.place = place;
    new ResizeObserver(() => { if (this.region) place(this.region); }).observe(this.stage);
  }
}

function iso(t) { return encodeURIComponent(new Date(t).toISOString()); }
