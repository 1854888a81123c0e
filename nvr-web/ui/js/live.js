// The live grid (landing page): layouts 1, 2x2, 3x3 and 4x4 (kept in localStorage), pages of
// cameras when there are more cameras than tiles, one LivePlayer per visible tile (started by
// an IntersectionObserver, all stopped while the tab is hidden), tile states drawn from the
// player and from the camera list (polled every 5 s). A tile opens its camera page, which
// shows the tile's last picture until its main stream's first frame. Tiles whose camera sees
// motion now are marked (GET /api/motion/live, polled every 2 s while visible).
//
// Streams: a tile plays the camera's sub-stream when the camera has one that the recorder
// receives, and the layout has 4 tiles or more or the tile is under SUB_BELOW_PX wide; a
// single tile, or a tile in full screen, plays the main stream. Switching keeps the picture
// (LivePlayer.setStream). Hovering a tile shows which stream it plays; its button forces the
// other stream for that tile (again: back to automatic), and the toolbar's Stream choice
// forces one for every tile of this browser.

import { api, decodableCodecs } from "/js/api.js";
import { el, icon, prefs } from "/js/util.js";
import { LivePlayer, rememberFrame } from "/js/live-player.js";

/** Tiles narrower than this (CSS px) play the sub-stream. */
const SUB_BELOW_PX = 480;
/** Grids of this many tiles or more play sub-streams whatever their size. */
const SUB_FROM_TILES = 4;
const STREAM_CHOICES = [
  { v: "auto", label: "Auto", title: "Sub-stream in grids and small tiles, main stream for one camera or full screen" },
  { v: "main", label: "Main", title: "Every tile plays the main (full-resolution) stream" },
  { v: "sub", label: "Sub", title: "Every tile plays the sub-stream where the camera has one" },
];

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
  let streamPref = prefs.get("liveStream", "auto");
  if (!STREAM_CHOICES.some((c) => c.v === streamPref)) streamPref = "auto";
  let page = 0;
  let cameras = [];
  const tiles = new Map(); // camera id -> tile
  const codecs = decodableCodecs();

  const grid = el("div.grid", { role: "list", "aria-label": "Live cameras" });
  const layoutBar = el("div.segmented", { role: "group", "aria-label": "Layout" });
  const streamBar = el("div.segmented#stream-pref", { role: "group", "aria-label": "Stream" });
  const pager = el("div.pager");
  const empty = el("div.empty", { hidden: true });
  const fullBtn = el("button.btn.icon-only", { type: "button", title: "Fullscreen", "aria-label": "Fullscreen",
    on: { click: () => (document.fullscreenElement ? document.exitFullscreen() : grid.requestFullscreen()).catch(() => {}) } },
  icon("fullscreen"));
  root.append(el("div.toolbar", null, el("h1.visually-hidden", null, "Live"), layoutBar, streamBar, pager, fullBtn),
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
    t.player.setStream(wantedStream(t));
    if (want && !t.player.running) t.player.start();
    else if (!want && t.player.running) { t.player.stop(); drawTile(t); }
  }

  /** The stream tile `t` should play now (see the top of this file). */
  function wantedStream(t) {
    const cam = t.cam;
    if (!cam.sub_url) return "main";
    const forced = t.force || (streamPref !== "auto" ? streamPref : null);
    if (forced) return forced;
    if (document.fullscreenElement === t.a) return "main";
    const sub = cam.streams && cam.streams.sub;
    // A sub-stream the recorder does not receive would show nothing: the main one then.
    if (!sub || sub.status !== "recording") return "main";
    const small = layout >= SUB_FROM_TILES || (t.a.clientWidth > 0 && t.a.clientWidth < SUB_BELOW_PX);
    return small ? "sub" : "main";
  }

  const onVisibility = () => { for (const t of tiles.values()) syncPlayer(t); keepAwake(); };
  document.addEventListener("visibilitychange", onVisibility);
  // Tile sizes change with the window, the layout and full screen: streams follow.
  const resized = () => { for (const t of tiles.values()) syncPlayer(t); };
  const ro = new ResizeObserver(resized);
  ro.observe(grid);
  document.addEventListener("fullscreenchange", resized);

  function drawStreamBar() {
    streamBar.replaceChildren(el("span.muted.small", null, "Stream"), ...STREAM_CHOICES.map((c) => {
      const b = el("button.btn", { type: "button", title: c.title, "aria-pressed": String(c.v === streamPref),
        "data-stream-pref": c.v }, c.label);
      b.addEventListener("click", () => {
        streamPref = c.v;
        prefs.set("liveStream", c.v);
        drawStreamBar();
        for (const t of tiles.values()) { syncPlayer(t); drawTile(t); }
      });
      return b;
    }));
  }

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
    const streamBtn = el("button.tile-stream", { type: "button" });
    const fullTile = el("button.tile-full", { type: "button", title: "Full screen (main stream)",
      "aria-label": `${cam.name}: full screen` }, icon("fullscreen"));
    const motionBadge = el("span.tile-motion", { hidden: true }, "Motion");
    // Whoever watches must know the camera records sound.
    const sound = el("span.tile-sound", { hidden: true, title: "This camera records sound" }, "Sound");
    const a = el("a.tile", { href: `#/camera/${cam.id}`, role: "listitem", "data-camera-id": String(cam.id) },
      video, spinner, message, motionBadge, el("div.tile-tools", null, streamBtn, fullTile),
      el("div.tile-label", null, dot, name, sound, stateText));
    const t = { cam, a, video, name, sound, stateText, dot, message, motionBadge, streamBtn, force: null, state: "idle", reason: null };
    a.tile = t;
    const own = (f) => (ev) => { ev.preventDefault(); ev.stopPropagation(); f(); };
    // Force the other stream than the one playing; pressed again, back to automatic.
    streamBtn.addEventListener("click", own(() => {
      const playing = t.player.playing || t.player.stream;
      t.force = t.force ? null : (playing === "sub" ? "main" : "sub");
      syncPlayer(t);
      drawTile(t);
    }));
    fullTile.addEventListener("click", own(() => {
      if (document.fullscreenElement === a) document.exitFullscreen().catch(() => {});
      else a.requestFullscreen().catch(() => {});
    }));
    // The camera page shows this picture until its main stream's first frame.
    a.addEventListener("click", () => rememberFrame(cam.id, video));
    t.player = new LivePlayer(video, cam.id, {
      codecs,
      stream: wantedStream(t),
      size: () => ({ width: a.clientWidth * devicePixelRatio, height: a.clientHeight * devicePixelRatio }),
      onState: (state, reason) => { t.state = state; t.reason = reason; drawTile(t); },
    });
    return t;
  }

  /** The tile's stream button and data: which stream plays, at which size, forced or not. */
  function drawStream(t) {
    const cam = t.cam;
    const playing = t.player.running ? (t.player.playing || t.player.stream) : wantedStream(t);
    const info = t.player.info || {};
    const size = info.width && info.stream === playing ? ` ${info.width}×${info.height}` : "";
    const forced = !!t.force || (streamPref !== "auto" && !!cam.sub_url);
    t.a.dataset.stream = playing;
    if (size) t.a.dataset.streamSize = `${info.width}x${info.height}`;
    t.streamBtn.textContent = playing === "sub" ? "SUB" : "MAIN";
    t.streamBtn.dataset.forced = String(forced);
    t.streamBtn.disabled = !cam.sub_url;
    const what = playing === "sub" ? "the sub-stream" : "the main stream";
    t.streamBtn.title = !cam.sub_url ? `Playing ${what}${size} (this camera has no sub-stream)`
      : `Playing ${what}${size}${forced ? ", chosen by hand" : ""}. ` +
        (t.force ? "Click: back to automatic." : `Click: play the ${playing === "sub" ? "main stream" : "sub-stream"}.`);
    t.streamBtn.setAttribute("aria-label", `${cam.name}: ${t.streamBtn.title}`);
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
    t.sound.hidden = !cam.record_audio;
    t.a.dataset.state = state;
    drawStream(t);
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
      // From the stream the tile plays: a sub-stream's key frame decodes several times faster.
      const stream = wantedStream(t) === "sub" ? "&stream=sub" : "";
      t.video.poster = `/api/cameras/${cam.id}/snapshot.jpg?width=${Math.min(1280, Math.round(t.a.clientWidth * devicePixelRatio) || 640)}${stream}`;
    }
  }

  function drawGrid() {
    drawLayoutBar();
    drawStreamBar();
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
      document.removeEventListener("fullscreenchange", resized);
      ro.disconnect();
      io.disconnect();
      if (wakeLock) wakeLock.release().catch(() => {});
      if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
      for (const t of tiles.values()) t.player.stop();
      tiles.clear();
    },
  };
}
