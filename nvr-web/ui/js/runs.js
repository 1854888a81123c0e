// RunsCache: the recorded runs of one stream of a camera (main by default), fetched one local
// day at a time from GET /api/cameras/{id}/recordings?stream= (ranges are limited to 24 h, so
// a 25-hour daylight-saving
// day takes two requests), merged into one sorted list. Days that are over are fetched once;
// the current day is refetched when older than REFRESH_MS, since recording goes on.

import { api, rangeQuery } from "/js/api.js";
import { parseTime } from "/js/util.js";

const REFRESH_MS = 10000;
const DAY_MS = 24 * 3600e3;

export function dayStart(t) {
  const d = new Date(t);
  return new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
}
export function nextDayStart(t) {
  const d = new Date(t);
  return new Date(d.getFullYear(), d.getMonth(), d.getDate() + 1).getTime();
}

export class RunsCache {
  constructor(cameraId, onChange, stream = "main") {
    this.id = cameraId;
    this.stream = stream;
    this.onChange = onChange || (() => {});
    this.days = new Map(); // day start -> {runs, fetchedAt, promise, end, error}
    this.runs = [];
  }

  /** Fetches every day that [start, end) touches and that is missing or stale. */
  async ensure(start, end, { force = false } = {}) {
    const jobs = [];
    for (let d = dayStart(start); d < end; d = nextDayStart(d)) jobs.push(this.ensureDay(d, force));
    await Promise.all(jobs);
  }

  /** Refetches the day holding `t` now (e.g. when playback reaches the end of what we know). */
  refreshAt(t) { return this.ensureDay(dayStart(t), true); }

  ensureDay(d, force) {
    const now = Date.now();
    const e = this.days.get(d);
    const dEnd = nextDayStart(d);
    const current = dEnd > now - 60e3; // today (or a day that just ended): still growing
    if (e && e.promise) return e.promise;
    if (e && !force && !e.error && (!current || now - e.fetchedAt < REFRESH_MS)) return Promise.resolve();
    if (e && !force && e.error && now - e.fetchedAt < 5000) return Promise.resolve(); // failed just now
    const entry = e || { runs: [], fetchedAt: 0 };
    entry.promise = (async () => {
      try {
        const runs = [];
        for (let s = d; s < dEnd; s += DAY_MS) {
          const streamQ = this.stream === "main" ? "" : `&stream=${this.stream}`;
          const r = await api("GET", `/api/cameras/${this.id}/recordings?${rangeQuery(s, Math.min(dEnd, s + DAY_MS))}${streamQ}`);
          runs.push(...r.runs);
        }
        entry.runs = runs.map(toRun);
        entry.error = null;
      } catch (err) {
        entry.error = err;
      } finally {
        entry.fetchedAt = Date.now();
        entry.promise = null;
      }
      this.days.set(d, entry);
      this.merge();
    })();
    this.days.set(d, entry);
    return entry.promise;
  }

  merge() {
    const byStart = new Map();
    for (const e of this.days.values()) {
      for (const r of e.runs) {
        const old = byStart.get(r.start);
        if (!old || r.end > old.end) byStart.set(r.start, r);
      }
    }
    this.runs = [...byStart.values()].sort((a, b) => a.start - b.start);
    this.onChange(this.runs);
  }

  /** The loaded day ranges [[start, end]], for drawing what is not known yet. */
  loadedRanges() {
    const out = [];
    for (const [d, e] of this.days) if (e.fetchedAt && !e.error) out.push([d, nextDayStart(d)]);
    return out;
  }

  isLoaded(t) {
    const e = this.days.get(dayStart(t));
    return !!(e && e.fetchedAt && !e.error);
  }

  /** The run holding t (end exclusive, with `slack` ms of tolerance at the end). */
  find(t, slack = 0) { return this.runs.find((r) => r.start <= t && t < r.end + slack) || null; }
  next(t) { return this.runs.find((r) => r.start > t) || null; }
  prev(t) {
    for (let i = this.runs.length - 1; i >= 0; i--) if (this.runs[i].end <= t) return this.runs[i];
    return null;
  }
  /** The start of the run before the one holding t (or before t). */
  prevStart(t) {
    const cur = this.find(t);
    if (cur && t - cur.start > 3000) return cur;
    for (let i = this.runs.length - 1; i >= 0; i--) {
      const r = this.runs[i];
      if (r.start < (cur ? cur.start : t)) return r;
    }
    return null;
  }
}

function toRun(r) {
  return {
    start: parseTime(r.start),
    end: parseTime(r.end),
    recording: !!r.recording,
    codec: r.codec || null,
    width: r.width || 0,
    height: r.height || 0,
    frames: r.frames,
    bytes: r.bytes,
  };
}
