// The live grid (landing page): layouts 1, 2x2, 3x3 and 4x4 (kept in localStorage), pages of
// cameras when there are more cameras than tiles, one LivePlayer per visible tile (started by
// an IntersectionObserver, all stopped while the tab is hidden), tile states drawn from the
// player and from the camera list (polled every 5 s). A tile opens its camera page. Tiles whose
// camera sees motion now are marked (GET /api/motion/live, polled every 2 s while visible).

import { api, decodableCodecs } from "/js/api.js";
import { el, icon, prefs } from "/js/util.js";
import { LivePlayer } from "/js/live-player.js";

const LAYOUTS = [
  { n: 1, label: "1 camera", icon: "grid1" },
  { n: 4, label: "2 × 2", icon: "grid4" },
  { n: 9, label: "3 × 3", icon: "grid9" },
  { n: 16, label: "4 × 4", icon: "grid16" },
];

const MOTION_POLL_MS = 2000;

const STATE_TEXT = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting",
  offline: "Offline",
  disabled: "Disabled",
  unsupported: "Cannot decode",
  idle: "Paused",
};

export function mount(root) {
  let layout = prefs.get("layout", 4);
  if (!LAYOUTS.some((l) => l.n === layout)) layout = 4;
  let page = 0;
  let cameras = [];
  const tiles = new Map(); // camera id -> tile
  const codecs = decodableCodecs();

  const grid = el("div.grid", { role: "list", "aria-label": "Live cameras" });
  const layoutBar = el("div.segmented", { role: "group", "aria-label": "Layout" });
  const pager = el("div.pager");
  const empty = el("div.empty", { hidden: true });
  const fullBtn = el("button.btn.icon-only", { type: "button", title: "Fullscreen", "aria-label": "Fullscreen",
    on: { click: () => (document.fullscreenElement ? document.exitFullscreen() : grid.requestFullscreen()).catch(() => {}) } },
  icon("fullscreen"));
  root.append(el("div.toolbar", null, el("h1.visually-hidden", null, "Live"), layoutBar, pager, fullBtn),
    grid, empty);

  // A control-room wall should not go to sleep while it shows live video.
  let wakeLock = null;
  const keepAwake = async () => {
    if (document.hidden || wakeLock || !navigator.wakeLock) return;
    try {
      wakeLock = await navigator.wakeLock.request("screen");
      wakeLock.addEventListener("release", () => { wakeLock = null; });
    } catch { /* not allowed here (e.g. no user activation): fine */ }
  };
  keepAwake();

  const visible = new Set();
  const io = new IntersectionObserver((entries) => {
    for (const e of entries) {
      const t = e.target.tile;
      if (!t) continue;
      if (e.isIntersecting) visible.add(t); else visible.delete(t);
      syncPlayer(t);
    }
  }, { threshold: 0.01 });

  function syncPlayer(t) {
    const want = visible.has(t) && !document.hidden && t.cam.enabled;
    if (want && !t.player.running) t.player.start();
    else if (!want && t.player.running) { t.player.stop(); drawTile(t); }
  }

  const onVisibility = () => { for (const t of tiles.values()) syncPlayer(t); keepAwake(); };
  document.addEventListener("visibilitychange", onVisibility);

  function drawLayoutBar() {
    layoutBar.replaceChildren(...LAYOUTS.map((l) => {
      const b = el("button.btn.icon-only", { type: "button", title: `Layout ${l.label}`,
        "aria-label": `Layout ${l.label}`, "aria-pressed": String(l.n === layout),
        "data-layout": String(l.n) }, icon(l.icon));
      b.addEventListener("click", () => { layout = l.n; prefs.set("layout", l.n); page = 0; drawGrid(); });
      return b;
    }));
  }

  function pages() { return Math.max(1, Math.ceil(cameras.length / layout)); }

  function drawPager() {
    const n = pages();
    pager.replaceChildren();
    if (n <= 1) return;
    const prev = el("button.btn.icon-only", { type: "button", title: "Previous page", "aria-label": "Previous page",
      disabled: page === 0, on: { click: () => { page--; drawGrid(); } } }, icon("prev"));
    const next = el("button.btn.icon-only", { type: "button", title: "Next page", "aria-label": "Next page",
      disabled: page >= n - 1, on: { click: () => { page++; drawGrid(); } } }, icon("next"));
    pager.append(prev, el("span.muted", null, `Page ${page + 1} of ${n}`), next);
  }

  function makeTile(cam) {
    const video = el("video", { muted: true, playsInline: true, autoplay: true, disablePictureInPicture: true });
    video.setAttribute("muted", "");
    const name = el("span.tile-name");
    const stateText = el("span.tile-state");
    const dot = el("span.dot");
    const spinner = el("div.spinner", { "aria-hidden": "true" });
    const message = el("div.tile-message");
    const motionBadge = el("span.tile-motion", { hidden: true }, "Motion");
    const a = el("a.tile", { href: `#/camera/${cam.id}`, role: "listitem", "data-camera-id": String(cam.id) },
      video, spinner, message, motionBadge, el("div.tile-label", null, dot, name, stateText));
    const t = { cam, a, video, name, stateText, dot, message, motionBadge, state: "idle", reason: null };
    a.tile = t;
    t.player = new LivePlayer(video, cam.id, {
      codecs,
      size: () => ({ width: a.clientWidth * devicePixelRatio, height: a.clientHeight * devicePixelRatio }),
      onState: (state, reason) => { t.state = state; t.reason = reason; drawTile(t); },
    });
    return t;
  }

  function drawTile(t) {
    const cam = t.cam;
    let state = !cam.enabled ? "disabled" : (t.player.running ? t.state || "connecting" : "idle");
    let reason = t.reason;
    // The recorder itself cannot reach the camera: say so even while the socket waits.
    if (cam.enabled && state !== "live" && cam.status === "reconnecting") {
      reason = (cam.status_detail && cam.status_detail.last_error) || reason;
    }
    t.name.textContent = cam.name;
    t.a.dataset.state = state;
    t.a.title = `${cam.name}: ${STATE_TEXT[state] || state}${reason ? ` (${reason})` : ""}`;
    t.a.setAttribute("aria-label", t.a.title);
    t.stateText.textContent = STATE_TEXT[state] || state;
    t.dot.className = `dot ${state}`;
    // Live still works while the disk is full, but nothing is recorded: say so on the tile.
    if (cam.status === "stalled_disk") {
      t.stateText.textContent += " · not recording: disk full";
      t.dot.className = "dot stalled_disk";
      t.a.title += " (not recording: disk full)";
    }
    const showMsg = state !== "live" && state !== "connecting";
    t.message.replaceChildren(...(showMsg ? [
      el("strong", null, STATE_TEXT[state] || state),
      reason ? el("span", null, reason) : null,
    ] : []).filter(Boolean));
    // While connecting, the last snapshot stands in for the video.
    if (state === "connecting" && !t.posterSet) {
      t.posterSet = true;
      t.video.poster = `/api/cameras/${cam.id}/snapshot.jpg?width=${Math.min(1280, Math.round(t.a.clientWidth * devicePixelRatio) || 640)}`;
    }
  }

  function drawGrid() {
    drawLayoutBar();
    page = Math.min(page, pages() - 1);
    drawPager();
    const cols = Math.sqrt(layout);
    grid.dataset.layout = String(layout);
    grid.style.setProperty("--cols", String(cols));
    const shown = cameras.slice(page * layout, page * layout + layout);
    const keep = new Set(shown.map((c) => c.id));
    for (const [id, t] of tiles) {
      if (!keep.has(id)) { io.unobserve(t.a); visible.delete(t); t.player.stop(); tiles.delete(id); }
    }
    const nodes = [];
    for (const cam of shown) {
      let t = tiles.get(cam.id);
      if (!t) { t = makeTile(cam); tiles.set(cam.id, t); io.observe(t.a); }
      t.cam = cam;
      drawTile(t);
      nodes.push(t.a);
    }
    // Empty cells keep the layout's shape.
    for (let i = shown.length; i < layout && cameras.length > 0; i++) nodes.push(el("div.tile.blank", { "aria-hidden": "true" }));
    grid.replaceChildren(...nodes);
    empty.hidden = cameras.length > 0;
    grid.hidden = cameras.length === 0;
    for (const t of tiles.values()) syncPlayer(t);
  }

  let alive = true;
  let pollTimer = null;
  async function refresh(first) {
    try {
      const list = await api("GET", "/api/cameras");
      if (!alive) return;
      const ids = (l) => l.map((c) => c.id).join(",");
      const changed = ids(list) !== ids(cameras);
      cameras = list;
      if (changed || first) drawGrid();
      else for (const c of list) { const t = tiles.get(c.id); if (t) { t.cam = c; drawTile(t); syncPlayer(t); } }
      if (!cameras.length) {
        empty.replaceChildren(el("p", null, "No camera yet."),
          el("p.muted", null, "An administrator adds cameras on the Cameras page."));
      }
    } catch (e) {
      if (first && alive) { empty.hidden = false; empty.textContent = `Cannot list cameras: ${e.message}`; }
    }
    if (alive) pollTimer = setTimeout(() => refresh(false), 5000);
  }
  refresh(true);

  let motionTimer = null;
  async function pollMotion() {
    if (!document.hidden) {
      try {
        const list = await api("GET", "/api/motion/live");
        for (const m of list) {
          const t = tiles.get(m.camera);
          if (!t) continue;
          t.a.dataset.motion = String(m.motion_now);
          t.motionBadge.hidden = !m.motion_now;
        }
      } catch { /* the next poll tries again */ }
    }
    if (alive) motionTimer = setTimeout(pollMotion, MOTION_POLL_MS);
  }
  pollMotion();

  return {
    unmount() {
      alive = false;
      clearTimeout(pollTimer);
      clearTimeout(motionTimer);
      document.removeEventListener("visibilitychange", onVisibility);
      io.disconnect();
      if (wakeLock) wakeLock.release().catch(() => {});
      if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
      for (const t of tiles.values()) t.player.stop();
      tiles.clear();
    },
  };
}
