// Entry point: finds out who is logged in (or whether first-run setup is needed), draws the
// header and navigation for the user's role, and routes hash URLs to pages:
//   #/live  #/camera/ID[?t=ISO]  #/evidence  #/audit[?filters]  #/cameras  #/users  #/status
// Each page module exports mount(root, params) -> { unmount() }. Pages a role cannot use are
// neither in its navigation nor reachable by URL (the server refuses their data anyway).

import { api, session, isAdmin, canEvidence, setUnauthorizedHandler } from "/js/api.js";
import { el, icon, prefs, dialog, field, toast } from "/js/util.js";
import * as login from "/js/login.js";
import * as live from "/js/live.js";
import * as camera from "/js/camera.js";
import * as camerasAdmin from "/js/cameras-admin.js";
import * as usersAdmin from "/js/users-admin.js";
import * as status from "/js/status.js";
import * as evidence from "/js/evidence.js";
import * as audit from "/js/audit.js";

const ROUTES = [
  { path: "live", page: live, label: "Live", icon: "grid4" },
  { path: "camera", page: camera },
  { path: "evidence", page: evidence, label: "Evidence", icon: "shield", evidence: true },
  { path: "audit", page: audit, label: "Audit", icon: "list", evidence: true },
  { path: "cameras", page: camerasAdmin, label: "Cameras", icon: "camera", admin: true },
  { path: "users", page: usersAdmin, label: "Users", icon: "users", admin: true },
  { path: "status", page: status, label: "Status", icon: "status", admin: true },
];

const main = document.getElementById("main");
let current = null; // { unmount }

function parseHash() {
  const h = location.hash.replace(/^#\/?/, "");
  const [pathPart, query = ""] = h.split("?");
  const parts = pathPart.split("/").filter(Boolean);
  return { name: parts[0] || "live", args: parts.slice(1), query: new URLSearchParams(query) };
}

function unmountCurrent() {
  if (current) {
    try { current.unmount(); } catch (e) { console.error(e); }
    current = null;
  }
  main.replaceChildren();
}

function render() {
  unmountCurrent();
  if (!session.user) { showLogin(); return; }
  document.getElementById("topbar").hidden = false;
  const { name, args, query } = parseHash();
  let route = ROUTES.find((r) => r.path === name);
  if (!route || !allowed(route)) {
    if (route && route.admin) toast("That page is for administrators.", "warn");
    else if (route && route.evidence) toast("That page is for the evidence and admin roles.", "warn");
    route = ROUTES[0];
    history.replaceState(null, "", "#/live");
  }
  drawNav(route);
  main.className = `page-${route.path}`;
  document.title = route.label ? `${route.label} · NVR` : "NVR";
  current = route.page.mount(main, { args, query });
}

/** Whether the logged-in user's role may open `route`. */
const allowed = (route) => (!route.admin || isAdmin()) && (!route.evidence || canEvidence());

function drawNav(active) {
  const nav = document.getElementById("nav");
  nav.replaceChildren(...ROUTES.filter((r) => r.label && allowed(r)).map((r) =>
    el("a", { href: `#/${r.path}`, class: r === active ? "active" : "", title: r.label, "aria-label": r.label,
      "aria-current": r === active ? "page" : undefined }, icon(r.icon), el("span", null, r.label))));
  const who = document.getElementById("who");
  const u = session.user;
  who.replaceChildren(
    el("span.user", { title: `Logged in as ${u.username} (${u.role})` },
      icon("user"), el("strong", null, u.username), el("span.role", null, u.role)),
    settingsMenu(),
    el("button.btn.subtle#logout", { type: "button", on: { click: logout } }, icon("logout"),
      el("span", null, "Log out")));
}

function settingsMenu() {
  const clock = el("input", { type: "checkbox", checked: prefs.get("hour12", false),
    on: { change: (e) => { prefs.set("hour12", e.target.checked); render(); } } });
  return el("details.menu", null,
    el("summary.btn.subtle.icon-only", { title: "Settings", "aria-label": "Settings" }, icon("settings")),
    el("div.menu-body", null,
      el("button.btn.subtle", { type: "button", on: { click: changePassword } }, "Change my password…"),
      el("label.check", null, clock, "12-hour clock")));
}

async function changePassword() {
  const cur = el("input", { type: "password", autocomplete: "current-password", required: true });
  const n1 = el("input", { type: "password", autocomplete: "new-password", required: true, minLength: 8 });
  const n2 = el("input", { type: "password", autocomplete: "new-password", required: true, minLength: 8 });
  const err = el("p.error", { role: "alert" });
  await dialog("Change my password", [field("Current password", cur), field("New password", n1),
    field("New password again", n2), err], [
    { label: "Cancel", value: null }, { label: "Change password", value: "ok", cls: "primary" }], {
    onSubmit: async () => {
      if (n1.value !== n2.value) { err.textContent = "The new passwords differ."; return false; }
      try {
        await api("POST", "/api/me/password", { current: cur.value, new: n1.value });
        toast("Password changed.", "ok");
        return true;
      } catch (e) { err.textContent = e.message; return false; }
    },
  });
}

async function logout() {
  try { await api("POST", "/api/logout"); } catch { /* the session may be gone already */ }
  session.user = null;
  render();
}

function showLogin() {
  document.getElementById("topbar").hidden = true;
  main.className = "page-login";
  document.title = "Log in · NVR";
  current = login.mount(main, {
    onLoggedIn: (user) => {
      session.user = user;
      if (!location.hash || location.hash === "#/" ) history.replaceState(null, "", "#/live");
      render();
    },
  });
}

setUnauthorizedHandler(() => { render(); });
window.addEventListener("hashchange", render);

(async function boot() {
  try {
    session.user = await api("GET", "/api/me");
  } catch {
    session.user = null;
  }
  render();
})();
