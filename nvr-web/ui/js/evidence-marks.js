// EvidenceMarks: the active holds (GET /api/holds) and the exports (GET /api/exports) of one
// camera, for drawing on its timeline; refetched every REFRESH_MS and on demand (after a hold
// or export is made). Only for the evidence and admin roles (guards get 403 here).

import { api } from "/js/api.js";
import { parseTime } from "/js/util.js";

const REFRESH_MS = 15000;

export class EvidenceMarks {
  /** onChange(holds, exports), each [{id, start, end, ...}] in epoch ms. */
  constructor(cameraId, onChange) {
    this.id = cameraId;
    this.onChange = onChange;
    this.holds = [];
    this.exports = [];
    this.timer = null;
    this.alive = true;
    this.refresh();
  }

  async refresh() {
    clearTimeout(this.timer);
    try {
      const [holds, exports] = await Promise.all([api("GET", "/api/holds"), api("GET", "/api/exports")]);
      if (!this.alive) return;
      this.holds = holds.filter((h) => h.camera === this.id && h.active !== false).map((h) => ({
        id: h.id, start: parseTime(h.start), end: parseTime(h.end), case: h.case, reason: h.reason,
        createdBy: h.created_by,
      }));
      this.exports = exports.filter((x) => x.cameras.includes(this.id) && x.state !== "failed").map((x) => ({
        id: x.id, start: parseTime(x.start), end: parseTime(x.end), state: x.state, case: x.case,
      }));
      this.onChange(this.holds, this.exports);
    } catch (e) {
      if (e.status === 403) { this.alive = false; return; } // not for this role: stop asking
    }
    if (this.alive) this.timer = setTimeout(() => this.refresh(), REFRESH_MS);
  }

  dispose() { this.alive = false; clearTimeout(this.timer); }
}
