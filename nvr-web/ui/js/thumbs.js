// ThumbLoader: low-resolution key-frame thumbnails from GET /api/cameras/{id}/snapshot.jpg
// for hovering and scrubbing, from the camera's sub-stream when it has one (its key frames
// decode several times faster), else (or where it was not recorded) the main stream. At most
// one request is in flight; while it runs only the newest target is kept (older ones are
// dropped), so fast scrubbing never queues up work on the recorder. Results are kept in a
// small cache of object URLs keyed by the second.

const CACHE = 80;

export class ThumbLoader {
  /** `streams()`: the streams to try, in order (e.g. ["sub", "main"]). */
  constructor(cameraId, onThumb, width = 160, streams = () => ["main"]) {
    this.id = cameraId;
    this.onThumb = onThumb;
    this.width = width;
    this.streams = streams;
    this.cache = new Map(); // second -> object URL | "" (failed)
    this.inFlight = null;
    this.queued = null;
  }

  /** Asks for the thumbnail at time t (ms); onThumb(url|null, t) is called when it is known. */
  request(t) {
    const key = Math.floor(t / 1000) * 1000;
    if (this.cache.has(key)) {
      const url = this.cache.get(key);
      this.onThumb(url || null, key);
      return;
    }
    if (this.inFlight !== null) { this.queued = key; return; }
    this.load(key);
  }

  async load(key) {
    this.inFlight = key;
    let url = "";
    const at = encodeURIComponent(new Date(key).toISOString());
    for (const stream of this.streams()) {
      try {
        const q = stream === "main" ? "" : `&stream=${stream}`;
        const r = await fetch(`/api/cameras/${this.id}/snapshot.jpg?at=${at}&width=${this.width}${q}`,
          { credentials: "same-origin" });
        if (r.ok) { url = URL.createObjectURL(await r.blob()); break; }
      } catch { /* network error: no thumbnail */ }
    }
    this.remember(key, url);
    this.inFlight = null;
    if (this.queued !== null && this.queued !== key) {
      const next = this.queued;
      this.queued = null;
      this.onThumb(url || null, key);
      this.request(next);
    } else {
      this.queued = null;
      this.onThumb(url || null, key);
    }
  }

  remember(key, url) {
    this.cache.set(key, url);
    while (this.cache.size > CACHE) {
      const [k, u] = this.cache.entries().next().value;
      if (u) URL.revokeObjectURL(u);
      this.cache.delete(k);
    }
  }

  dispose() {
    for (const u of this.cache.values()) if (u) URL.revokeObjectURL(u);
    this.cache.clear();
  }
}
