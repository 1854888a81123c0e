// Small shared helpers: DOM building, icons from the embedded sprite, time and size
// formatting (recorder wall time in the browser's zone, 24 h by default, UTC on hover),
// toasts, modal dialogs, and per-browser preferences in localStorage.

/** Creates an element: el("div.class#id", {props, attrs via "data-x"/"aria-x"}, ...children). */
export function el(spec, props, ...children) {
  const m = /^([a-z0-9-]+)((?:[.#][\w-]+)*)$/i.exec(spec);
  const e = document.createElement(m ? m[1] : spec);
  if (m && m[2]) {
    for (const part of m[2].match(/[.#][\w-]+/g)) {
      if (part[0] === ".") e.classList.add(part.slice(1)); else e.id = part.slice(1);
    }
  }
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "on") for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
      else if (k.startsWith("data-") || k.startsWith("aria-") || k === "role" || k === "for" ||
               k === "title" || k === "href" || k === "type" || k === "name" || k === "list" ||
               k === "autocomplete" || k === "inputmode" || k === "step" || k === "min" || k === "max") {
        e.setAttribute(k, v === true ? "" : v);
      } else e[k] = v;
    }
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

const SVG = "http://www.w3.org/2000/svg";
/** An icon from /icons.svg (decorative: hidden from screen readers). */
export function icon(name, cls) {
  const s = document.createElementNS(SVG, "svg");
  s.setAttribute("class", `icon${cls ? " " + cls : ""}`);
  s.setAttribute("aria-hidden", "true");
  s.setAttribute("focusable", "false");
  const u = document.createElementNS(SVG, "use");
  u.setAttribute("href", `/icons.svg#${name}`);
  s.append(u);
  return s;
}

/** A button with an icon and a label (the label is visible unless `iconOnly`, then a tooltip). */
export function iconButton(name, label, onClick, { iconOnly = false, cls = "" } = {}) {
  const b = el("button", { type: "button", class: `btn ${cls}${iconOnly ? " icon-only" : ""}`,
    title: label, "aria-label": label });
  b.append(icon(name));
  if (!iconOnly) b.append(el("span", null, label));
  if (onClick) b.addEventListener("click", onClick);
  return b;
}

// ---- preferences (per browser) ----
export const prefs = {
  get(key, dflt) {
    try { const v = localStorage.getItem(`nvr.${key}`); return v === null ? dflt : JSON.parse(v); }
    catch { return dflt; }
  },
  set(key, v) { try { localStorage.setItem(`nvr.${key}`, JSON.stringify(v)); } catch { /* private mode */ } },
};

// ---- time ----
const pad = (n, w = 2) => String(n).padStart(w, "0");
const hour12 = () => prefs.get("hour12", false);

/** "14:03:05" (or "2:03:05 PM") in the browser's zone. */
export function fmtClock(ms, { seconds = true, millis = false } = {}) {
  const d = new Date(ms);
  let h = d.getHours();
  let suffix = "";
  if (hour12()) { suffix = h < 12 ? " AM" : " PM"; h = h % 12 || 12; }
  let s = `${hour12() ? h : pad(h)}:${pad(d.getMinutes())}`;
  if (seconds) s += `:${pad(d.getSeconds())}`;
  if (millis) s += `.${pad(d.getMilliseconds(), 3)}`;
  return s + suffix + dstOffsetNote(ms);
}

/** "2026-11-30" in the browser's zone. */
export function fmtDate(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

export function fmtDateTime(ms, opts) { return `${fmtDate(ms)} ${fmtClock(ms, opts)}`; }

/** " (UTC+01:00)" inside the hour a daylight-saving change makes ambiguous, else "". */
function dstOffsetNote(ms) {
  const off = (t) => -new Date(t).getTimezoneOffset();
  const o = off(ms);
  if (off(ms - 3600e3) === o && off(ms + 3600e3) === o) return "";
  const sign = o >= 0 ? "+" : "-";
  return ` (UTC${sign}${pad(Math.floor(Math.abs(o) / 60))}:${pad(Math.abs(o) % 60)})`;
}

/** The UTC form shown on hover. */
export const utcTitle = (ms) => `${new Date(ms).toISOString().replace("T", " ").replace("Z", "")} UTC`;

/** A <time> element with the local wall time and the UTC time as its tooltip. */
export function timeEl(ms, fmt = fmtDateTime) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return el("span.muted", null, "—");
  return el("time", { dateTime: new Date(ms).toISOString(), title: utcTitle(ms) }, fmt(ms));
}

export const parseTime = (s) => (s ? Date.parse(s) : null);

/** "3 d 4 h", "12 min", "45 s". */
export function fmtDuration(ms) {
  const s = Math.round(ms / 1000);
  if (s < 90) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 90) return `${m} min`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h} h`;
  const d = Math.floor(h / 24);
  return `${d} d ${h % 24} h`;
}

/** An exact length for evidence: "1 h 02 min 05 s", "4 min 30 s", "12.5 s". */
export function fmtSpan(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "—";
  const neg = ms < 0 ? "−" : "";
  ms = Math.abs(ms);
  if (ms < 60e3) return `${neg}${(Math.round(ms / 100) / 10).toString()} s`;
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return neg + (h ? `${h} h ${pad(m)} min ${pad(sec)} s` : `${m} min ${pad(sec)} s`);
}

/** The value of a datetime-local input (step 1 s) for time t in the browser's zone. */
export function localInput(t) {
  const d = new Date(t);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Epoch ms of a datetime-local input's value (browser's zone), or NaN. */
export const fromLocalInput = (v) => (v ? new Date(v).getTime() : NaN);

/** "1.23 GB" (decimal units, like disks). */
export function fmtBytes(n) {
  if (n === null || n === undefined) return "—";
  const u = ["B", "kB", "MB", "GB", "TB", "PB"];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < u.length - 1) { v /= 1000; i++; }
  return `${v >= 100 || i === 0 ? v.toFixed(0) : v.toFixed(v >= 10 ? 1 : 2)} ${u[i]}`;
}

export function fmtBitrate(bps) {
  if (!bps) return "—";
  return bps >= 1e6 ? `${(bps / 1e6).toFixed(2)} Mbit/s` : `${Math.round(bps / 1e3)} kbit/s`;
}

// ---- toasts ----
let toastBox = null;
/** A short message at the bottom of the screen (severity: info | ok | warn | bad). */
export function toast(message, severity = "info", ms = 4000) {
  if (!toastBox) {
    toastBox = el("div.toasts", { role: "status", "aria-live": "polite" });
    document.body.append(toastBox);
  }
  const t = el(`div.toast.${severity}`, null, message);
  toastBox.append(t);
  setTimeout(() => t.remove(), ms);
  return t;
}

// ---- dialogs ----
/**
 * A modal dialog built from `content` (nodes) with buttons [{label, value, cls}]. Resolves to
 * the chosen button's value, or null on Esc/cancel. `onSubmit(value)` may return false (or a
 * promise of false) to keep the dialog open, e.g. while showing an error.
 */
export function dialog(title, content, buttons, { onSubmit, wide = false } = {}) {
  return new Promise((resolve) => {
    const form = el("form.dialog-body", { method: "dialog" });
    const heading = el("h2", { id: `dlg-${Math.random().toString(36).slice(2)}` }, title);
    const dlg = el(`dialog.modal${wide ? ".wide" : ""}`, { "aria-labelledby": heading.id });
    const row = el("div.dialog-buttons");
    let chosen = null;
    for (const b of buttons) {
      const btn = el("button", { type: b.value === null ? "button" : "submit",
        class: `btn ${b.cls || ""}`, value: String(b.value) }, b.label);
      if (b.value === null) btn.addEventListener("click", () => dlg.close());
      else btn.addEventListener("click", () => { chosen = b.value; });
      row.append(btn);
    }
    form.append(heading, ...[content].flat().filter(Boolean), row);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const value = chosen ?? buttons.find((b) => b.value !== null)?.value ?? true;
      if (onSubmit) {
        const ok = await onSubmit(value);
        if (ok === false) return;
      }
      resolve(value);
      dlg.close();
    });
    dlg.addEventListener("close", () => { resolve(null); dlg.remove(); });
    dlg.append(form);
    document.body.append(dlg);
    dlg.showModal();
  });
}

/** Yes/no confirmation; resolves true when confirmed. */
export async function confirmDialog(title, message, confirmLabel, danger = true) {
  const v = await dialog(title, [el("p", null, message)], [
    { label: "Cancel", value: null },
    { label: confirmLabel, value: "yes", cls: danger ? "danger" : "primary" },
  ]);
  return v === "yes";
}

/** A labelled form field. */
export function field(label, input, hint) {
  return el("label.field", null, el("span.label", null, label), input,
    hint ? el("span.hint", null, hint) : null);
}

/** True when a key event comes from a place where the user types. */
export function isTyping(ev) {
  const t = ev.target;
  if (!(t instanceof Element)) return false;
  if (t.isContentEditable) return true;
  if (t.tagName === "TEXTAREA" || t.tagName === "SELECT") return true;
  if (t.tagName === "INPUT") {
    return !["button", "checkbox", "radio", "range", "submit", "reset"].includes(t.type);
  }
  return !!t.closest("dialog[open]");
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
