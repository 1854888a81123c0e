// Evidence page (evidence and admin roles): the exports (GET /api/exports) grouped by case,
// newest case first, each with its state (running with progress / ready with the download,
// the bundle's SHA-256 and how to verify it offline / failed with the error), who made it and
// when, cameras, range and reason; refreshed every 2 s while one runs, else every 15 s. Then
// the holds (GET /api/holds, or ?all=true with released ones) with Release… (confirmed,
// POST /api/holds/{id}/release). A role without access sees the server's refusal, no data.

import { api } from "/js/api.js";
import { el, iconButton, confirmDialog, toast, timeEl, fmtSpan, fmtDate, fmtClock, parseTime } from "/js/util.js";
import { exportStatus } from "/js/evidence-dialogs.js";

const FAST_MS = 2000;
const SLOW_MS = 15000;
/** `created_by` of the holds that protect an export while it is written (released after). */
const EXPORT_HOLD_OWNER = "export";

/** A range as "date time – time (length)", local time with UTC on hover. */
export function rangeCell(start, end) {
  const sameDay = fmtDate(start) === fmtDate(end);
  return el("span.range-cell", null, timeEl(start), " – ",
    timeEl(end, sameDay ? (t) => fmtClock(t) : undefined),
    el("span.muted.small", null, ` (${fmtSpan(end - start)})`));
}

export function mount(root) {
  const exportsBox = el("div#exports", null, el("p.muted", null, "Loading…"));
  const holdsBody = el("tbody");
  const holdsNote = el("p.muted");
  const showAll = el("input#holds-all", { type: "checkbox" });
  showAll.addEventListener("change", () => refreshHolds());
  root.append(
    el("div.page-head", null, el("h1", null, "Evidence"),
      el("a.btn.subtle", { href: "#/audit", title: "Who did what, and when" }, "Audit log")),
    el("p.muted.small", null, "Select a range on a camera's timeline (its Range button) to export it or hold it."),
    el("section", { "aria-labelledby": "exports-title" }, el("h2#exports-title", null, "Exports"), exportsBox),
    el("section", { "aria-labelledby": "holds-title" },
      el("div.section-head", null, el("h2#holds-title", null, "Holds"),
        el("label.check.small", null, showAll, "Show released holds too")),
      el("div.table-wrap", null, el("table.list#holds-table", null,
        el("thead", null, el("tr", null, ...["Camera", "Range", "Case", "Reason", "Placed", "State", ""].map((h) => el("th", { scope: "col" }, h)))),
        holdsBody)), holdsNote));

  let alive = true;
  let timer = null;
  const holdsTimer = setInterval(() => refreshHolds(), SLOW_MS);
  let cams = new Map();

  async function loadCameras() {
    try { cams = new Map((await api("GET", "/api/cameras")).map((c) => [c.id, c.name])); } catch { /* ids only */ }
  }
  const camName = (id) => cams.get(id) || `Camera ${id}`;

  async function refreshExports() {
    clearTimeout(timer);
    let running = false;
    try {
      const list = await api("GET", "/api/exports");
      if (!alive) return;
      running = list.some((x) => x.state === "running");
      exportsBox.replaceChildren(...drawExports(list));
    } catch (e) {
      if (!alive) return;
      exportsBox.replaceChildren(denied(e, "exports"));
      if (e.status === 403) return;
    }
    if (alive) timer = setTimeout(refreshExports, running ? FAST_MS : SLOW_MS);
  }

  function drawExports(list) {
    if (!list.length) return [el("p.muted#no-exports", null, "No export yet.")];
    const groups = new Map();
    for (const x of list) {
      const key = x.case || "";
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(x);
    }
    // The list comes newest first, so groups are in order of their newest export.
    return [...groups].map(([c, xs]) => el("section.card.case-group", { "data-case": c },
      el("h3.case-title", null, c ? ["Case ", el("strong", null, c)] : el("span.muted", null, "No case reference"),
        el("span.muted.small", null, ` · ${xs.length} export${xs.length > 1 ? "s" : ""}`)),
      el("div.table-wrap", null, el("table.list.exports-table", null,
        el("thead", null, el("tr", null, ...["Export", "Cameras", "Range", "Reason", "Made", "State and bundle"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", null, ...xs.map(exportRow))))));
  }

  function exportRow(x) {
    const start = parseTime(x.start);
    const end = parseTime(x.end);
    return el("tr", { "data-export-id": String(x.id), "data-state": x.state },
      el("td.num", null, `#${x.id}`),
      el("td", null, ...x.cameras.map((id, i) => [i ? ", " : "",
        el("a", { href: `#/camera/${id}?t=${encodeURIComponent(x.start)}` }, camName(id))])),
      el("td", null, rangeCell(start, end)),
      el("td.reason", null, x.reason),
      el("td", null, el("div", null, x.created_by), el("div.small", null, timeEl(parseTime(x.created))),
        x.finished ? el("div.small.muted", null, "finished ", timeEl(parseTime(x.finished), fmtClock)) : null),
      el("td.bundle", null, ...exportStatus(x)));
  }

  async function refreshHolds() {
    try {
      const list = await api("GET", `/api/holds${showAll.checked ? "?all=true" : ""}`);
      if (!alive) return;
      list.sort((a, b) => b.id - a.id);
      holdsNote.textContent = list.length ? "" : (showAll.checked ? "No hold yet." : "No active hold.");
      holdsBody.replaceChildren(...list.map(holdRow));
    } catch (e) {
      if (!alive) return;
      holdsBody.replaceChildren();
      holdsNote.replaceChildren(denied(e, "holds"));
    }
  }

  function holdRow(hd) {
    const start = parseTime(hd.start);
    const end = parseTime(hd.end);
    const byExport = hd.created_by === EXPORT_HOLD_OWNER;
    const release = hd.active && !byExport
      ? iconButton("unlock", "Release…", () => releaseHold(hd), { cls: "danger" }) : null;
    if (release) release.dataset.holdId = String(hd.id);
    return el("tr", { "data-hold-id": String(hd.id), "data-active": String(hd.active) },
      el("td", null, el("a", { href: `#/camera/${hd.camera}?t=${encodeURIComponent(hd.start)}`, title: "Show on the timeline" }, camName(hd.camera))),
      el("td", null, rangeCell(start, end)),
      el("td", null, hd.case || el("span.muted", null, "—")),
      el("td.reason", null, hd.reason),
      el("td", null, el("div", null, byExport ? "export (automatic)" : hd.created_by), el("div.small", null, timeEl(parseTime(hd.created)))),
      el("td", null, hd.active ? el("span.sev.connecting", null, "Active")
        : [el("span.sev.disabled", null, "Released"), el("div.small.muted", null, hd.released_by || ""),
          hd.released ? el("div.small", null, timeEl(parseTime(hd.released))) : null]),
      el("td.actions", null, release ?? (byExport && hd.active ? el("span.muted.small", null, "Released when the export ends") : null)));
  }

  async function releaseHold(hd) {
    const ok = await confirmDialog(`Release hold ${hd.id}?`,
      `Retention may then delete these recordings of ${camName(hd.camera)} (${fmtDate(parseTime(hd.start))} ${fmtClock(parseTime(hd.start))} – ${fmtClock(parseTime(hd.end))}) once they are old enough. The release is recorded in the audit log.`,
      "Release hold");
    if (!ok) return;
    try {
      await api("POST", `/api/holds/${hd.id}/release`);
      toast(`Hold ${hd.id} released.`, "ok");
    } catch (e) { toast(`Cannot release the hold: ${e.message}`, "bad"); }
    refreshHolds();
  }

  (async () => {
    await loadCameras();
    if (!alive) return;
    refreshExports();
    refreshHolds();
  })();
  return { unmount() { alive = false; clearTimeout(timer); clearInterval(holdsTimer); } };
}

/** The server's refusal (403) or another error, as a message instead of data. */
export function denied(e, what) {
  return el("p.error.denied", { role: "alert" }, e.status === 403
    ? `Your role cannot see the ${what}: the recorder refused (403).` : `Cannot list the ${what}: ${e.message}`);
}
