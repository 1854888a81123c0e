// Digital zoom of the camera page's video: the mouse wheel (or a two-finger pinch) over the
// picture zooms from 1x to 8x around the pointer, dragging pans while zoomed, a double click
// (or double tap) resets. It only transforms the elements it is given (CSS transform set from
// script, which the CSP allows); the stream itself is untouched.

const MAX = 8;

export class DigitalZoom {
  /** @param {HTMLElement} surface the element receiving input; @param {HTMLElement[]} targets */
  constructor(surface, targets, onChange) {
    this.surface = surface;
    this.targets = targets;
    this.onChange = onChange || (() => {});
    this.scale = 1;
    this.x = 0; // translation in CSS px, applied after scaling from the top-left corner
    this.y = 0;
    this.pointers = new Map();
    this.handlers = {
      wheel: (e) => this.onWheel(e),
      pointerdown: (e) => this.onDown(e),
      pointermove: (e) => this.onMove(e),
      pointerup: (e) => this.onUp(e),
      pointercancel: (e) => this.onUp(e),
      dblclick: () => this.reset(),
    };
    for (const [k, f] of Object.entries(this.handlers)) surface.addEventListener(k, f, { passive: k !== "wheel" });
    for (const t of targets) t.style.transformOrigin = "0 0";
  }

  dispose() {
    for (const [k, f] of Object.entries(this.handlers)) this.surface.removeEventListener(k, f);
  }

  reset() { this.scale = 1; this.x = 0; this.y = 0; this.apply(); }

  /** Zooms to `scale` keeping the surface point (px, py) still. */
  zoomAt(scale, px, py) {
    const s = Math.min(MAX, Math.max(1, scale));
    // The content point under (px, py) stays there: p = t + s * c.
    const cx = (px - this.x) / this.scale;
    const cy = (py - this.y) / this.scale;
    this.scale = s;
    this.x = px - s * cx;
    this.y = py - s * cy;
    this.apply();
  }

  apply() {
    const w = this.surface.clientWidth;
    const h = this.surface.clientHeight;
    // Keep the picture covering the surface: no panning past its edges.
    this.x = Math.min(0, Math.max(w - w * this.scale, this.x));
    this.y = Math.min(0, Math.max(h - h * this.scale, this.y));
    if (this.scale <= 1.001) { this.scale = 1; this.x = 0; this.y = 0; }
    const tr = this.scale === 1 ? "" : `translate(${this.x}px, ${this.y}px) scale(${this.scale})`;
    for (const t of this.targets) t.style.transform = tr;
    this.surface.classList.toggle("zoomed", this.scale > 1);
    this.onChange(this.scale);
  }

  local(e) {
    const r = this.surface.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  }

  onWheel(e) {
    if (e.ctrlKey && e.deltaMode !== 0) return;
    e.preventDefault();
    const [px, py] = this.local(e);
    this.zoomAt(this.scale * Math.exp(-e.deltaY * (e.deltaMode === 1 ? 16 : 1) * 0.0015), px, py);
  }

  onDown(e) {
    if (e.pointerType === "mouse" && e.button !== 0) return;
    this.pointers.set(e.pointerId, this.local(e));
    if (this.pointers.size === 2) {
      const [a, b] = [...this.pointers.values()];
      this.pinch = { d: Math.hypot(a[0] - b[0], a[1] - b[1]) || 1, scale: this.scale };
    }
    if (this.scale > 1 || this.pointers.size === 2) this.surface.setPointerCapture(e.pointerId);
  }

  onMove(e) {
    const prev = this.pointers.get(e.pointerId);
    if (!prev) return;
    const p = this.local(e);
    this.pointers.set(e.pointerId, p);
    if (this.pointers.size === 2 && this.pinch) {
      const [a, b] = [...this.pointers.values()];
      const d = Math.hypot(a[0] - b[0], a[1] - b[1]) || 1;
      this.zoomAt(this.pinch.scale * d / this.pinch.d, (a[0] + b[0]) / 2, (a[1] + b[1]) / 2);
    } else if (this.scale > 1) {
      this.x += p[0] - prev[0];
      this.y += p[1] - prev[1];
      this.apply();
    }
  }

  onUp(e) {
    this.pointers.delete(e.pointerId);
    if (this.pointers.size < 2) this.pinch = null;
  }
}
