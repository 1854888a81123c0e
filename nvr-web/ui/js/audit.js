// Audit page (evidence and admin roles): GET /api/audit, newest first, as a table (time in
// local time with UTC on hover and the entry's id, actor, action, object, details compactly,
// with times inside the details shown the same way). Filters (actor, action, object, since,
// until) and the page (before_id, limit) live in the URL (#/audit?action=export&before_id=9),
// so Back works and a filtered view can be linked; "Older" pages with before_id = the last id.

import { api } from "/js/api.js";
import { el, iconButton, field, timeEl, fmtDateTime, localInput, fromLocalInput, parseTime } from "/js/util.js";
import { denied } from "/js/evidence.js";

export const ACTIONS = ["login", "login_failed", "logout", "live_view", "playback", "export",
  "export_download", "hold", "hold_release", "denied", "retention_delete"];
const PAGE = 50;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;

export function mount(root, { query }) {
  const limit = Math.max(1, Math.min(500, Number(query.get("limit")) || PAGE));
  const beforeId = query.get("before_id");
  const actor = el("input#audit-actor", { value: query.get("actor") || "", autocomplete: "off", spellcheck: false, placeholder: "username" });
  const action = el("select#audit-action", null, el("option", { value: "" }, "any"),
    ...ACTIONS.map((a) => el("option", { value: a, selected: a === query.get("action") }, a)));
  const object = el("input#audit-object", { value: query.get("object") || "", autocomplete: "off", spellcheck: false, placeholder: "camera:3, camera, export:7" });
  const since = el("input#audit-since", { type: "datetime-local", step: "1" });
  const until = el("input#audit-until", { type: "datetime-local", step: "1" });
  for (const [input, key] of [[since, "since"], [until, "until"]]) {
    const t = parseTime(query.get(key));
    if (t) input.value = localInput(t);
  }
  const reset = el("a.btn.subtle", { href: "#/audit" }, "Reset");
  const form = el("form.card.audit-filters#audit-filters", { role: "search" },
    el("div.filter-row", null, field("Actor", actor), field("Action", action), field("Object", object),
      field("Since", since), field("Until", until)),
    el("div.group", null, el("button.btn.primary", { type: "submit" }, "Apply"), reset));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    location.hash = `#/audit${queryString({ actor: actor.value.trim(), action: action.value,
      object: object.value.trim(), since: isoOf(since.value), until: isoOf(until.value),
      limit: limit !== PAGE ? String(limit) : "" })}`;
  });
  const tbody = el("tbody");
  const note = el("p.muted#audit-note");
  const newest = el("a.btn#audit-newest", { href: `#/audit${queryString(filtersOf(query, limit))}`, hidden: !beforeId }, "Newest");
  const older = iconButton("next", "Older", null);
  older.id = "audit-older";
  older.disabled = true;
  const pager = el("div.pager.audit-pager", null, el("span.muted.small#audit-range"), newest, older);
  root.append(el("div.page-head", null, el("h1", null, "Audit log"),
    el("a.btn.subtle", { href: "#/evidence" }, "Evidence")), form,
    el("div.table-wrap", null, el("table.list#audit-table", null,
      el("thead", null, el("tr", null, ...["Time", "Actor", "Action", "Object", "Details"].map((h) => el("th", { scope: "col" }, h)))),
      tbody)), note, pager);

  let alive = true;
  (async () => {
    const q = filtersOf(query, limit);
    q.limit = String(limit);
    if (beforeId) q.before_id = beforeId;
    try {
      const rows = await api("GET", `/api/audit${queryString(q)}`);
      if (!alive) return;
      tbody.replaceChildren(...rows.map(row));
      note.textContent = rows.length ? "" : beforeId ? "No older entries." : "No entry matches these filters.";
      pager.querySelector("#audit-range").textContent = rows.length
        ? `Entries #${rows[0].id} to #${rows[rows.length - 1].id}, newest first` : "";
      if (rows.length === limit) {
        older.disabled = false;
        older.addEventListener("click", () => {
          location.hash = `#/audit${queryString({ ...filtersOf(query, limit), before_id: String(rows[rows.length - 1].id) })}`;
        });
      }
    } catch (e) {
      if (!alive) return;
      note.replaceChildren(denied(e, "audit log"));
    }
  })();
  return { unmount() { alive = false; } };
}

/** The filters of the current URL (without the page), plus a non-default limit. */
function filtersOf(query, limit) {
  const f = {};
  for (const k of ["actor", "action", "object", "since", "until"]) if (query.get(k)) f[k] = query.get(k);
  if (limit !== PAGE) f.limit = String(limit);
  return f;
}

function queryString(obj) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(obj)) if (v) p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : "";
}

function isoOf(local) {
  const t = fromLocalInput(local);
  return Number.isNaN(t) ? "" : new Date(t).toISOString();
}

const rank = (order, k) => { const i = order.indexOf(k); return i < 0 ? order.length : i; };

function row(e) {
  const t = parseTime(e.time);
  return el("tr", { "data-audit-id": String(e.id), "data-action": e.action },
    el("td.nowrap", null, timeEl(t, (ms) => fmtDateTime(ms)), el("div.small.muted", null, `#${e.id}`)),
    el("td", null, e.actor),
    el("td", null, el("span", { class: `action-tag ${actionClass(e.action)}` }, e.action)),
    el("td", null, objectCell(e.object)),
    el("td.details", null, details(e.detail)));
}

function actionClass(a) {
  if (a === "denied" || a === "login_failed") return "bad";
  if (a.startsWith("export") || a.startsWith("hold")) return "evidence";
  if (a === "retention_delete") return "warn";
  return "";
}

function objectCell(o) {
  const m = /^camera:(\d+)$/.exec(o || "");
  if (m) return el("a", { href: `#/camera/${m[1]}` }, o);
  return o ? el("code", null, o) : el("span.muted", null, "—");
}

/** The detail object as "key value · key value", times local with UTC on hover. */
function details(d) {
  if (d === null || d === undefined) return el("span.muted", null, "—");
  if (typeof d !== "object") return String(d);
  const parts = [];
  const first = ["export", "hold", "start", "end", "case", "reason"];
  const keys = Object.keys(d).sort((a, b) => rank(first, a) - rank(first, b));
  for (const [k, v] of keys.map((k) => [k, d[k]])) {
    if (v === null || v === "" || (typeof v === "object" && !Object.keys(v).length)) continue;
    let val;
    if (typeof v === "string" && ISO.test(v)) val = timeEl(Date.parse(v));
    else if (typeof v === "object") val = el("code", null, JSON.stringify(v));
    else val = String(v);
    parts.push(el("span.kv", null, el("span.k", null, k), " ", el("span.v", null, val)));
  }
  return parts.length ? parts : el("span.muted", null, "—");
}
