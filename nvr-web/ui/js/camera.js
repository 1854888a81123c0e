// The camera page: full-size live video, and playback of the recordings on a timeline.
// Modes: "live" (LivePlayer; the playhead sits at now) and "playback" (RecordedPlayer playing
// one run at a time in windows of at most WINDOW_MS; at a window's end it continues with the
// same run, the next run, or switches to live when it reaches the live edge). The timeline,
// the time readout and the playhead are updated on every animation frame. Keyboard: Space
// play/pause, ←/→ ±10 s, Shift+←/→ ±1 s, , . frame step, L live, H history, F fullscreen,
// + - zoom, Esc back to the grid; ignored while typing in a field.
// Evidence and admin users also get the range selection (range-select.js, range-bar.js: drag
// across the timeline while the range bar is open or with Shift, [ ] mark IN/OUT at the
// playhead; moving an edge shows its frame, paused), Export… and Hold… dialogs, and the
// camera's holds and exports drawn on the timeline (evidence-marks.js). Motion (motion.js):
// the timeline's motion strip, previous/next motion (Shift+M / M), region search (R).
// Streams: live plays the main stream (the viewer may force the sub-stream, except while
// digitally zoomed), starting from the picture the grid's tile showed; playback faster than
// 2x and the timeline's thumbnails use the sub-stream where it was recorded.

import { api, decodableCodecs, canPlayCodec, canEvidence } from "/js/api.js";
import { el, icon, iconButton, prefs, fmtClock, fmtDate, fmtDateTime, utcTitle, toast, isTyping,
  fmtBitrate, localInput } from "/js/util.js";
import { LivePlayer, takeFrame } from "/js/live-player.js";
import { RecordedPlayer } from "/js/recorded-player.js";
import { Timeline } from "/js/timeline.js";
import { RunsCache } from "/js/runs.js";
import { ThumbLoader } from "/js/thumbs.js";
import { DigitalZoom } from "/js/digital-zoom.js";
import { RangeSelection } from "/js/range-select.js";
import { RangeBar } from "/js/range-bar.js";
import { EvidenceMarks } from "/js/evidence-marks.js";
import { exportDialog, holdDialog } from "/js/evidence-dialogs.js";
import { MotionSearch } from "/js/motion.js";

const WINDOW_MS = 30 * 60e3;   // longest view.mp4 requested at once
const LIVE_EDGE_MS = 3000;     // the last seconds of a recording run are not seekable: go live
const SPEEDS = [0.5, 1, 2, 4, 8];
const SUB_ABOVE_RATE = 2;      // faster playback reads the sub-stream where it was recorded

export function mount(root, { args, query }) {
  const id = Number(args[0]);
  let cam = null;
  let mode = null;                 // "live" | "playback"
  let alive = true;
  let pending = null;              // wall time being loaded (shown until the player knows better)
  let scrubbing = null;            // wall time under a dragged playhead
  let fps = 15;
  let previewEnd = null;           // playing the range: pause when the playhead gets here
  const evidence = canEvidence();

  // ---- DOM ----
  const title = el("h1.cam-title", null, "Camera");
  const sound = el("span.pill.sound-badge#cam-sound", { hidden: true, title: "This camera records sound" }, "Sound");
  const pill = el("span.pill");
  const liveBtn = iconButton("live", "Live", () => goLive(), { cls: "mode-live" });
  const histBtn = iconButton("history", "History", () => playAt(Date.now() - 30e3, { why: "history" }), { cls: "mode-history" });
  liveBtn.id = "btn-live";
  histBtn.id = "btn-history";
  const liveVideo = el("video.stage-video.live", { muted: true, playsInline: true, autoplay: true });
  liveVideo.setAttribute("muted", "");
  // The grid tile's last picture stands in until the main stream's first frame.
  const handed = takeFrame(id);
  if (handed) liveVideo.poster = handed;
  const streamSelect = el("select#stream-select", { title: "Live stream", "aria-label": "Live stream", hidden: true },
    el("option", { value: "auto" }, "Main stream"), el("option", { value: "main" }, "Main (always)"),
    el("option", { value: "sub" }, "Sub-stream"));
  const recVideo = el("video.stage-video.recorded#recorded-video", { muted: true, playsInline: true, hidden: true });
  const scrubImg = el("img.scrub-thumb", { alt: "", hidden: true });
  const spinner = el("div.spinner", { hidden: true, "aria-hidden": "true" });
  const message = el("div.stage-message#stage-message", { hidden: true, role: "status" });
  const badge = el("div.stage-badge");
  const zoomBadge = el("div.zoom-badge", { hidden: true, title: "Digital zoom: wheel or pinch; double-click resets" });
  const stage = el("div.stage", null, liveVideo, recVideo, scrubImg, spinner, message, badge, zoomBadge);
  const dzoom = new DigitalZoom(stage, [liveVideo, recVideo, scrubImg], (s) => {
    zoomBadge.hidden = s <= 1;
    zoomBadge.textContent = `${s.toFixed(1)}×`;
    live.setStream(liveStream());
  });

  const playBtn = iconButton("play", "Play", () => togglePlay(), { iconOnly: true });
  playBtn.id = "btn-play";
  const prevBtn = iconButton("prev-run", "Previous recording", () => jumpRun(-1), { iconOnly: true });
  const nextBtn = iconButton("next-run", "Next recording", () => jumpRun(1), { iconOnly: true });
  const backFrame = iconButton("step-back", "Previous frame (,)", () => step(-1), { iconOnly: true });
  const fwdFrame = iconButton("step-fwd", "Next frame (.)", () => step(1), { iconOnly: true });
  const speed = el("select#speed", { title: "Playback speed", "aria-label": "Playback speed" },
    ...SPEEDS.map((s) => el("option", { value: String(s), selected: s === 1 }, `${s}×`)));
  speed.addEventListener("change", () => {
    rec.setRate(Number(speed.value));
    // Crossing 2x changes the stream: load the other one at the same instant.
    if (mode === "playback" && pending === null && rec.win && playbackStream(rec.wallTime()).stream !== (rec.win.stream || "main")) {
      playAt(rec.wallTime(), { why: "rate", autoplay: !rec.paused });
    }
  });
  const clock = el("time.clock#play-time", { "aria-live": "off" });
  const picker = el("input#goto-time", { type: "datetime-local", step: "1", "aria-label": "Go to date and time" });
  const goBtn = el("button.btn", { type: "submit" }, "Go");
  const goForm = el("form.goto", { title: "Go to a date and time" }, picker, goBtn);
  goForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const t = picker.value ? new Date(picker.value).getTime() : NaN;
    if (Number.isNaN(t)) { toast("Pick a date and time first.", "warn"); return; }
    tl.centerOn(t);
    playAt(t, { why: "picker" });
  });
  const zoomOut = iconButton("zoom-out", "Zoom out (−)", () => { tl.zoomAt(2); tl.touched(); }, { iconOnly: true });
  const zoomIn = iconButton("zoom-in", "Zoom in (+)", () => { tl.zoomAt(0.5); tl.touched(); }, { iconOnly: true });
  const fullBtn = iconButton("fullscreen", "Fullscreen (F)", () => fullscreen(), { iconOnly: true });
  const rangeBtn = evidence ? iconButton("range", "Range", () => bar.toggle()) : null;
  if (rangeBtn) {
    rangeBtn.id = "btn-range";
    rangeBtn.title = "Select a range to export or hold ([ and ] mark IN and OUT)";
    rangeBtn.setAttribute("aria-pressed", "false");
    rangeBtn.setAttribute("aria-controls", "range-bar");
  }
  const controls = el("div.controls", { role: "toolbar", "aria-label": "Playback" },
    el("div.group", null, prevBtn, backFrame, playBtn, fwdFrame, nextBtn, speed),
    clock,
    el("div.group", null, goForm),
    el("div.group.push", null, rangeBtn, zoomOut, zoomIn, fullBtn));
  const tlBox = el("div.timeline-box");
  const help = el("p.keys.muted", null,
    "Space play/pause · ←/→ 10 s · Shift+←/→ 1 s · , . frame · M / Shift+M next/previous motion · R search region · L live · H history · +/− timeline zoom · wheel on video: digital zoom · F fullscreen · Esc back",
    evidence ? " · [ ] mark range IN/OUT · Shift+drag on the timeline: select a range" : "");
  root.append(
    el("div.cam-head", null, el("a.btn.subtle.back", { href: "#/live", title: "Back to the live grid (Esc)" }, icon("back"), el("span", null, "Live grid")),
      title, sound, pill, el("div.group.push", null, streamSelect, liveBtn, histBtn)),
    stage, controls, tlBox);
  // Evidence range (evidence and admin roles): the bar sits between the timeline and the keys.
  let range = null;
  let bar = null;
  let marks = null;

  // ---- players, timeline, runs ----
  const codecs = decodableCodecs();
  streamSelect.value = ["auto", "main", "sub"].includes(prefs.get("liveStream", "auto")) ? prefs.get("liveStream", "auto") : "auto";
  /** The live stream: the main one, unless the viewer forced the sub-stream and is not zoomed. */
  function liveStream() {
    return cam && cam.sub_url && streamSelect.value === "sub" && dzoom.scale <= 1 ? "sub" : "main";
  }
  streamSelect.addEventListener("change", () => {
    prefs.set("liveStream", streamSelect.value);
    live.setStream(liveStream());
  });
  const live = new LivePlayer(liveVideo, id, {
    codecs,
    stream: "main",
    size: () => ({ width: stage.clientWidth * devicePixelRatio, height: stage.clientHeight * devicePixelRatio }),
    onState: (state, reason) => {
      if (state === "live") liveVideo.removeAttribute("poster");
      stage.dataset.stream = live.playing || live.stream;
      if (mode === "live") showLiveState(state, reason);
    },
  });
  const rec = new RecordedPlayer(recVideo, id, {
    onEnded: (win) => continueAfter(win),
    onError: (e) => { showMessage(`Playback failed: ${e.message}`); spinner.hidden = true; },
    onWaiting: (w) => { if (mode === "playback") spinner.hidden = !w; },
  });
  const runs = new RunsCache(id, (list) => tl.setRuns(list, runs.loadedRanges()));
  // The sub-stream's runs, for fast playback (made once the camera is known to have one).
  let subRuns = null;
  const hasSubRecordings = () => !!(cam && cam.streams && cam.streams.sub);
  const thumbs = new ThumbLoader(id, (url, t) => {
    tl.showHoverThumb(url);
    if (scrubbing !== null && url) { scrubImg.src = url; scrubImg.hidden = false; }
  }, 160, () => (hasSubRecordings() ? ["sub", "main"] : ["main"]));
  let viewTimer = null;
  let motion = null;
  const tl = new Timeline(tlBox, {
    onSeek: (t) => playAt(t, { why: "click" }),
    onScrub: (t) => { scrubbing = t; thumbs.request(t); },
    onScrubEnd: (t) => { scrubbing = null; scrubImg.hidden = true; playAt(t, { why: "click" }); },
    onHover: (t) => { if (t !== null) thumbs.request(t); },
    onView: (s, e) => {
      clearTimeout(viewTimer);
      viewTimer = setTimeout(() => {
        runs.ensure(s, Math.min(e, Date.now() + 60e3));
        if (subRuns) subRuns.ensure(s, Math.min(e, Date.now() + 60e3));
      }, 150);
      if (motion) motion.viewChanged();
    },
    selectDrag: (e) => evidence && (bar.isOpen || e.shiftKey),
    onSelect: (a, b, final, moving) => {
      bar.open();
      range.set(a, b);
      showEdge(moving === b ? range.out : range.in, final);
    },
  });
  motion = new MotionSearch(id, tl, stage, {
    video: () => (mode === "live" ? liveVideo : recVideo),
    time: () => currentTime(),
    now: () => Date.now(),
    onJump: (t) => { tl.centerOn(t); tl.touched(); playAt(t, { why: "motion" }); },
    onExport: evidence ? (a, b) => { bar.open(); range.set(a, b); fitRange(a, b); openExport(); } : null,
  });
  controls.insertBefore(el("div.group", null, motion.prevBtn, motion.regionBtn, motion.nextBtn), controls.children[2]);
  tlBox.after(motion.panel);
  if (evidence) {
    range = new RangeSelection(tl, { onEdge: (t, final) => showEdge(t, final), onChange: () => bar.update() });
    bar = new RangeBar(range, {
      onRange: (a, b) => { fitRange(a, b); if (mode === "playback") showEdge(a, true); },
      onPreview: () => preview(),
      onExport: () => openExport(),
      onHold: () => openHold(),
      onToggle: (open) => { rangeBtn.setAttribute("aria-pressed", String(open)); if (!open) previewEnd = null; },
    });
    marks = new EvidenceMarks(id, (holds, exports) => { tl.setHolds(holds); tl.setExports(exports); });
    root.append(bar.el);
  }
  root.append(help);

  /** While an edge of the range moves: its thumbnail; when it stops: its frame, paused. */
  function showEdge(t, final) {
    previewEnd = null;
    if (!final) { scrubbing = t; thumbs.request(t); return; }
    scrubbing = null;
    scrubImg.hidden = true;
    rec.pause();
    playAt(t, { why: "edge", autoplay: false });
  }

  /** Shows the whole range on the timeline. */
  function fitRange(a, b) {
    const span = Math.min(24 * 3600e3, Math.max(60e3, (b - a) * 1.25));
    tl.setView((a + b) / 2 - span / 2, span);
    tl.touched();
  }

  function preview() {
    if (!range.complete) return;
    const end = range.out;
    playAt(range.in, { why: "preview" }).then(() => { previewEnd = end; });
  }

  async function openExport() {
    if (!range.complete || !cam) return;
    let cameras = [cam];
    try { cameras = await api("GET", "/api/cameras"); } catch { /* this camera alone */ }
    rec.pause();
    await exportDialog({ camera: cam, cameras, start: range.in, end: range.out });
    if (alive) marks.refresh();
  }

  async function openHold() {
    if (!range.complete || !cam) return;
    const hold = await holdDialog({ camera: cam, start: range.in, end: range.out });
    if (hold && alive) {
      toast(`Hold ${hold.id} placed: retention keeps this range until it is released.`, "ok", 5000);
      marks.refresh();
    }
  }

  function showMessage(text, sub) {
    message.hidden = !text;
    message.replaceChildren(...(text ? [el("strong", null, text), sub ? el("span", null, sub) : null] : []).filter(Boolean));
  }

  function showLiveState(state, reason) {
    spinner.hidden = !(state === "connecting" || state === "reconnecting");
    stage.dataset.state = state;
    if (state === "live") showMessage(null);
    else if (state === "connecting") showMessage(null);
    else showMessage({ reconnecting: "Reconnecting", offline: "Offline", unsupported: "Cannot decode" }[state] || state, reason);
  }

  function setMode(m) {
    mode = m;
    stage.dataset.mode = m;
    liveBtn.setAttribute("aria-pressed", String(m === "live"));
    histBtn.setAttribute("aria-pressed", String(m === "playback"));
    liveVideo.hidden = m !== "live";
    recVideo.hidden = m !== "playback";
    for (const b of [prevBtn, nextBtn, backFrame, fwdFrame, speed]) b.disabled = false;
    backFrame.disabled = fwdFrame.disabled = speed.disabled = m === "live";
  }

  function goLive() {
    rec.stop();
    pending = null;
    setMode("live");
    if (cam && !cam.enabled) {
      live.stop();
      spinner.hidden = true;
      stage.dataset.state = "disabled";
      showMessage("Camera disabled", "It is neither recording nor streaming; an administrator can enable it.");
    } else {
      if (!document.hidden) live.start();
      showLiveState(live.state || "connecting", live.reason);
    }
    tl.touchedAt = 0;
    history.replaceState(null, "", `#/camera/${id}`);
  }

  /**
   * Plays from wall time t. A time in a gap snaps to the next recording (and says so); a time
   * at the live edge of a run still recording goes live.
   */
  async function playAt(t, { why = "", autoplay = true } = {}) {
    t = Math.min(t, Date.now());
    const sameStream = rec.win && playbackStream(t).stream === (rec.win.stream || "main");
    if (mode === "playback" && sameStream && rec.seekWithin(t)) {
      pending = null;
      if (autoplay && why !== "key") rec.play();
      showMessage(null);
      return;
    }
    pending = t;
    tl.setPlayhead(t);
    if (mode !== "playback") { live.stop(true); setMode("playback"); }
    spinner.hidden = false;
    await runs.ensure(t - 60e3, t + 60e3);
    // Near now the cached run end is stale (refetched every 10 s): ask again before deciding.
    if (Date.now() - t < 60e3 || (!runs.find(t) && Date.now() - t < 5 * 60e3)) await runs.refreshAt(t);
    if (!alive || pending !== t) return;
    let run = runs.find(t);
    if (!run && why === "edge") {
      rec.stop();
      spinner.hidden = true;
      showMessage("No recording at this edge of the range", `${fmtDateTime(t)} falls between recordings.`);
      return;
    }
    if (!run) {
      const next = runs.next(t);
      if (next && next.start < Date.now()) {
        if (why) toast(`No recording at ${fmtClock(t)}: playing the next recording, from ${fmtDateTime(next.start)}.`, "info", 5000);
        t = next.start;
        run = next;
      } else {
        rec.stop();
        pending = t;
        spinner.hidden = true;
        const prev = runs.prev(t);
        showMessage("No recordings for this time",
          prev ? `The latest recording before it ended at ${fmtDateTime(prev.end)}.` : "Nothing was recorded here.");
        return;
      }
    }
    if (run.recording && t > run.end - LIVE_EDGE_MS) {
      if (why === "history") t = Math.max(run.start, run.end - 30e3);
      else if (why === "edge") t = Math.max(run.start, run.end - LIVE_EDGE_MS); // the latest seekable frame
      else {
        toast(why ? "That is the live edge: showing live video." : "Caught up: showing live video.", "info");
        goLive();
        return;
      }
    }
    showMessage(null);
    const use = playbackStream(t);
    const src = use.run || run;
    const end = Math.min(run.end, src.end, t + WINDOW_MS);
    rec.load({ start: t, end, transcode: !canPlayCodec(src.codec), width: src.width, height: src.height,
      stream: use.stream }, { autoplay });
    rec.setRate(Number(speed.value));
    pending = null;
    history.replaceState(null, "", `#/camera/${id}?t=${encodeURIComponent(new Date(t).toISOString())}`);
  }

  /**
   * Which stream plays from wall time t: the sub-stream above SUB_ABOVE_RATE where its recorded
   * run holds t (with that run), else the main stream.
   */
  function playbackStream(t) {
    if (Number(speed.value) <= SUB_ABOVE_RATE || !subRuns || t === null) return { stream: "main", run: null };
    const r = subRuns.find(t);
    return r && r.end - t > 2000 ? { stream: "sub", run: r } : { stream: "main", run: null };
  }

  /** A window ended: continue in the same run, in the next one, or go live. */
  async function continueAfter(win) {
    const t = win.end;
    await runs.refreshAt(t - 1);
    if (!alive || mode !== "playback") return;
    const run = runs.find(t - 1, 1);
    if (run && run.end > t + 1000) { playAt(t, { why: "" }); return; }
    const next = runs.next(t - 1);
    if (next) { toast(`Skipped a gap: continuing at ${fmtClock(next.start)}.`, "info"); playAt(next.start); return; }
    if (run && run.recording) { toast("Caught up: showing live video.", "info"); goLive(); return; }
    showMessage("End of the recordings", `The last recording ended at ${fmtDateTime(t)}.`);
  }

  function currentTime() {
    if (scrubbing !== null) return scrubbing;
    if (mode === "live") return Date.now();
    if (pending !== null) return pending;
    return rec.wallTime();
  }

  function togglePlay() {
    // Pausing live freezes a few seconds back (the very last seconds are not seekable yet).
    if (mode === "live") { playAt(Date.now() - 5e3, { why: "history", autoplay: false }); return; }
    if (pending !== null) return;
    if (rec.paused) rec.play(); else rec.pause();
  }

  function seekBy(ms) {
    const t = currentTime();
    if (t === null) return;
    if (mode === "live" && ms > 0) return;
    playAt(t + ms, { why: mode === "live" ? "history" : "key", autoplay: mode === "live" || !rec.paused });
  }

  function step(dir) {
    if (mode !== "playback" || pending !== null) return;
    rec.step(dir, fps);
  }

  async function jumpRun(dir) {
    const t = currentTime() ?? Date.now();
    await runs.ensure(t - 24 * 3600e3, t + 60e3);
    const r = dir < 0 ? runs.prevStart(t) : runs.next(t);
    if (!r) { toast(dir < 0 ? "No earlier recording in the last day." : "No later recording.", "warn"); return; }
    tl.centerOn(r.start);
    tl.touched();
    playAt(r.start, { why: "" });
  }

  function fullscreen() {
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else stage.requestFullscreen().catch(() => {});
  }

  // ---- keyboard ----
  function onKey(ev) {
    if (ev.defaultPrevented || ev.altKey || ((ev.ctrlKey || ev.metaKey) && ev.key !== "+" && ev.key !== "-")) return;
    if (isTyping(ev)) return;
    const k = ev.key;
    let handled = true;
    if (k === " " || k === "Spacebar") togglePlay();
    else if (k === "ArrowLeft") seekBy(ev.shiftKey ? -1000 : -10000);
    else if (k === "ArrowRight") seekBy(ev.shiftKey ? 1000 : 10000);
    else if (k === ",") step(-1);
    else if (k === ".") step(1);
    else if (k === "l" || k === "L") goLive();
    else if (k === "h" || k === "H") playAt(Date.now() - 30e3, { why: "history" });
    else if (k === "f" || k === "F") fullscreen();
    else if (k === "+" || k === "=") { tl.zoomAt(0.5); tl.touched(); }
    else if (k === "-" || k === "_") { tl.zoomAt(2); tl.touched(); }
    else if (evidence && (k === "[" || k === "]")) markEdge(k === "[" ? "in" : "out");
    else if (k === "m" || k === "M") motion.step(ev.shiftKey ? -1 : 1);
    else if (k === "r" || k === "R") motion.toggleMode();
    else if (k === "Escape") {
      if (document.fullscreenElement) { /* the browser leaves fullscreen */ }
      else if (motion.escape()) { /* left region search */ }
      else if (bar && bar.isOpen) bar.close();
      else location.hash = "#/live";
    }
    else handled = false;
    if (handled) ev.preventDefault();
  }
  /** `[` / `]`: marks IN or OUT at the playhead (live: now). */
  function markEdge(which) {
    const t = currentTime() ?? Date.now();
    bar.open();
    if (which === "in") range.markIn(t); else range.markOut(t);
    const other = which === "in" ? range.out : range.in;
    if (other !== null && (other < tl.start || other > tl.end)) fitRange(range.in, range.out);
    toast(`${which === "in" ? "IN" : "OUT"} marked at ${fmtClock(t)}.`, "info", 2000);
  }

  // Space on a focused button would also "click" it on keyup: swallow that.
  const onKeyUp = (ev) => { if (ev.key === " " && !isTyping(ev) && ev.target.tagName === "BUTTON") ev.preventDefault(); };
  document.addEventListener("keydown", onKey);
  document.addEventListener("keyup", onKeyUp);

  // ---- per-frame drawing ----
  let raf = 0;
  let lastSec = null;
  function frame() {
    raf = requestAnimationFrame(frame);
    const now = Date.now();
    tl.setNow(now);
    const t = currentTime();
    tl.setPlayhead(t);
    if (scrubbing === null) tl.follow(t, mode === "live");
    if (previewEnd !== null && mode === "playback" && pending === null && t !== null && t >= previewEnd) {
      previewEnd = null;
      rec.pause();
      toast("End of the range.", "info", 2000);
    }
    tl.draw();
    if (range) range.position();
    zoomIn.disabled = !tl.canZoomIn();
    zoomOut.disabled = !tl.canZoomOut();
    const playing = mode === "live" || (pending === null && !rec.paused);
    if (playBtn.dataset.playing !== String(playing)) {
      playBtn.dataset.playing = String(playing);
      playBtn.replaceChildren(icon(playing ? "pause" : "play"));
      playBtn.title = playing ? "Pause (Space)" : "Play (Space)";
      playBtn.setAttribute("aria-label", playing ? "Pause" : "Play");
    }
    const sec = t === null ? null : Math.floor(t / 1000);
    if (sec !== lastSec || clock.dataset.mode !== mode) {
      lastSec = sec;
      clock.dataset.mode = mode;
      if (t === null) { clock.textContent = "—"; clock.removeAttribute("datetime"); }
      else {
        clock.dateTime = new Date(t).toISOString();
        clock.dataset.t = String(Math.round(t));
        clock.title = utcTitle(t);
        clock.replaceChildren(el("span.date", null, fmtDate(t)), " ", el("strong", null, fmtClock(t)));
      }
      const sub = mode === "live" ? live.playing === "sub" : !!(rec.win && rec.win.stream === "sub");
      badge.textContent = (mode === "live" ? "LIVE" : (t === null ? "" : `${fmtDate(t)} ${fmtClock(t)}`)) +
        (sub ? " · SUB" : "");
      badge.className = `stage-badge ${mode}`;
      badge.title = t === null ? "" : utcTitle(t);
      if (document.activeElement !== picker && t !== null) picker.value = localInput(t);
    }
  }

  const onVisibility = () => {
    if (mode !== "live") return;
    if (document.hidden) live.stop(true);
    else if (cam && cam.enabled) live.start();
  };
  document.addEventListener("visibilitychange", onVisibility);

  // ---- camera info ----
  let pollTimer = null;
  async function loadCamera() {
    try {
      const c = await api("GET", `/api/cameras/${id}`);
      if (!alive) return;
      const first = !cam;
      const wasEnabled = cam && cam.enabled;
      cam = c;
      title.textContent = c.name;
      sound.hidden = !c.record_audio;
      document.title = `${c.name} · NVR`;
      const d = c.status_detail || {};
      if (d.fps) fps = d.fps;
      pill.className = `pill ${c.status}`;
      const stalled = c.status === "stalled_disk";
      pill.replaceChildren(el("span.dot", { class: `dot ${c.status}` }), stalled ? "not recording: disk full" : c.status,
        d.fps ? ` · ${d.fps.toFixed(1)} fps` : "", d.bitrate_bps ? ` · ${fmtBitrate(d.bitrate_bps)}` : "");
      pill.title = c.status === "reconnecting" && d.last_error ? `Last error: ${d.last_error}`
        : stalled ? "The disk is full and everything on it is held or recording: free space or release a hold." : "";
      streamSelect.hidden = !c.sub_url;
      if (hasSubRecordings() && !subRuns) {
        subRuns = new RunsCache(id, null, "sub");
        subRuns.ensure(Date.now() - 24 * 3600e3, Date.now() + 60e3);
      }
      if (first) { live.setStream(liveStream()); start(); }
      else if (mode === "live" && c.enabled !== wasEnabled) goLive();
    } catch (e) {
      if (!cam && alive) { title.textContent = "Camera not found"; showMessage("Cannot open this camera", e.message); }
    }
    if (alive) pollTimer = setTimeout(loadCamera, 5000);
  }

  function start() {
    const t = query.get("t");
    const at = t ? Date.parse(t) : NaN;
    tl.setNow(Date.now());
    // The viewer chose before the camera's details arrived (History, Live or a key): that stands.
    if (mode !== null) tl.setView(Date.now() - tl.span * 0.85);
    else if (!Number.isNaN(at)) { tl.setView(at - tl.span * 0.3); playAt(at, { why: "link" }); }
    else { tl.setView(Date.now() - tl.span * 0.85); goLive(); }
    runs.ensure(tl.start, Date.now() + 60e3);
    raf = requestAnimationFrame(frame);
  }
  const runsTimer = setInterval(() => {
    runs.ensure(tl.start, Math.min(tl.end, Date.now() + 60e3));
    if (subRuns) subRuns.ensure(tl.start, Math.min(tl.end, Date.now() + 60e3));
  }, 10000);
  loadCamera();

  return {
    unmount() {
      alive = false;
      cancelAnimationFrame(raf);
      clearTimeout(pollTimer);
      clearTimeout(viewTimer);
      clearInterval(runsTimer);
      document.removeEventListener("keydown", onKey);
      document.removeEventListener("keyup", onKeyUp);
      document.removeEventListener("visibilitychange", onVisibility);
      live.stop();
      rec.stop();
      thumbs.dispose();
      motion.dispose();
      tl.dispose();
      dzoom.dispose();
      if (marks) marks.dispose();
      if (range) range.dispose();
      if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    },
  };
}

