// Minimal recorder UI: log in, list cameras with status, play recordings, add a camera.
// Plain DOM code, no framework, no external resource; everything is served by the recorder.
"use strict";

const $ = (id) => document.getElementById(id);
let session = null;
let selected = null;

async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && session) headers["X-CSRF-Token"] = session.csrf_token;
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (r.status === 401 && path !== "/api/login") { showLogin(); throw new Error("not logged in"); }
  const text = await r.text();
  const data = text ? JSON.parse(text) : null;
  if (!r.ok) throw new Error((data && data.error) || r.statusText);
  return data;
}

function showLogin() {
  session = null;
  $("login-view").hidden = false;
  $("app-view").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
}

function showApp() {
  $("login-view").hidden = true;
  $("app-view").hidden = false;
  $("logout").hidden = false;
  $("who").textContent = `${session.username} (${session.role})`;
  $("add-form").hidden = session.role !== "admin";
  refreshCameras();
}

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props);
  for (const c of children) e.append(c);
  return e;
}

async function refreshCameras() {
  const cams = await api("GET", "/api/cameras");
  const ul = $("cameras");
  ul.replaceChildren();
  for (const c of cams) {
    const d = c.status_detail;
    const detail = d && d.state === "reconnecting" && d.last_error ? ` — ${d.last_error}` : "";
    const rate = d && d.fps ? ` ${d.fps.toFixed(1)} fps, ${(d.bitrate_bps / 1e6).toFixed(2)} Mbit/s` : "";
    const li = el("li", { tabIndex: 0, className: selected === c.id ? "selected" : "" },
      el("div", { textContent: c.name }),
      el("div", { className: `status ${c.status}`, textContent: `${c.status}${rate}${detail}` }));
    li.addEventListener("click", () => selectCamera(c));
    li.addEventListener("keydown", (ev) => { if (ev.key === "Enter") selectCamera(c); });
    ul.append(li);
  }
}

function fmt(t) { return new Date(t).toLocaleString(); }

async function selectCamera(c) {
  selected = c.id;
  $("camera-title").textContent = `Recordings of ${c.name}`;
  const end = new Date();
  const start = new Date(end.getTime() - 24 * 3600 * 1000);
  const q = `start=${encodeURIComponent(start.toISOString())}&end=${encodeURIComponent(end.toISOString())}`;
  const data = await api("GET", `/api/cameras/${c.id}/recordings?${q}`);
  const ul = $("runs");
  ul.replaceChildren();
  if (data.runs.length === 0) ul.append(el("li", { textContent: "No recordings in the last 24 hours." }));
  for (const r of data.runs.reverse()) {
    const li = el("li", { tabIndex: 0,
      textContent: `${fmt(r.start)} – ${fmt(r.end)} · ${r.frames} frames · ${r.width}×${r.height}${r.recording ? " · recording" : ""}` });
    const play = () => {
      // Play the last 5 minutes of the run, or all of it if shorter.
      const runEnd = new Date(r.end).getTime();
      const s = new Date(Math.max(new Date(r.start).getTime(), runEnd - 5 * 60 * 1000));
      $("player").src = `/api/cameras/${c.id}/view.mp4?start=${encodeURIComponent(s.toISOString())}&end=${encodeURIComponent(new Date(runEnd).toISOString())}`;
      $("player").play().catch(() => {});
    };
    li.addEventListener("click", play);
    li.addEventListener("keydown", (ev) => { if (ev.key === "Enter") play(); });
    ul.append(li);
  }
  refreshCameras();
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  $("login-error").textContent = "";
  try {
    session = await api("POST", "/api/login", { username: f.get("username"), password: f.get("password") });
    showApp();
  } catch (e) { $("login-error").textContent = e.message; }
});

$("add-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  $("add-error").textContent = "Testing the camera…";
  try {
    await api("POST", "/api/cameras", { name: f.get("name"), url: f.get("url"),
      username: f.get("username") || null, password: f.get("password") || null });
    ev.target.reset();
    $("add-error").textContent = "";
    refreshCameras();
  } catch (e) { $("add-error").textContent = e.message; }
});

$("logout").addEventListener("click", async () => {
  try { await api("POST", "/api/logout"); } finally { showLogin(); }
});

(async () => {
  try { session = await api("GET", "/api/me"); showApp(); } catch { showLogin(); }
  setInterval(() => { if (session) refreshCameras().catch(() => {}); }, 5000);
})();
