// Cameras page (admin): the camera list with a health dot, measured fps and bitrate, storage
// used and retention horizon (oldest recording), polled every 5 s; add and edit in a dialog
// with the main stream's URL and the optional sub-stream's (recorded or live only, with its
// own retention) and a Test button (POST /api/cameras/test, up to 10 s, both streams side by
// side); enable/disable (PATCH); remove (DELETE ?delete_recordings=true after a confirmation
// that says recordings are deleted).

import { api } from "/js/api.js";
import { el, icon, iconButton, field, dialog, confirmDialog, toast, timeEl, fmtBytes,
  fmtBitrate, fmtDuration, parseTime } from "/js/util.js";

export const KIND_TEXT = {
  auth: "The camera refused the username or password.",
  unreachable: "Nothing answered at this address and port in time.",
  no_video: "The camera answered but offers no H.264 or H.265 video.",
  stalled: "The camera stopped sending video.",
  policy: "The recorder's policy refuses this camera address.",
  protocol: "The camera spoke RTSP in a way the recorder cannot use.",
  storage: "The recorder could not write the video to disk.",
};

export function health(c) {
  const d = c.status_detail || {};
  if (!c.enabled) return { cls: "disabled", text: "Disabled" };
  if (c.status === "recording") return { cls: "recording", text: "Recording" };
  if (c.status === "stalled_disk") {
    return { cls: "stalled_disk", text: "Stalled: disk full",
      detail: "The disk is full and everything on it is held or recording; free space or release a hold." };
  }
  if (c.status === "reconnecting") {
    const why = d.last_error ? `${d.last_error}${d.last_error_kind ? ` (${d.last_error_kind})` : ""}` : "";
    return { cls: "reconnecting", text: "Reconnecting", detail: why };
  }
  return { cls: "connecting", text: c.status === "starting" ? "Starting" : "Connecting" };
}

export function mount(root) {
  const tbody = el("tbody");
  const note = el("p.muted");
  const addBtn = iconButton("add", "Add camera", () => editCamera(null), { cls: "primary" });
  addBtn.id = "add-camera";
  root.append(
    el("div.page-head", null, el("h1", null, "Cameras"), addBtn),
    el("div.table-wrap", null, el("table.list#cameras-table", null,
      el("thead", null, el("tr", null, ...["", "Name", "Status", "Video", "FPS", "Bitrate", "Storage",
        "Oldest recording", "Retention", ""].map((h) => el("th", { scope: "col" }, h)))),
      tbody)), note);

  let alive = true;
  let timer = null;
  let cams = [];

  async function refresh() {
    try {
      cams = await api("GET", "/api/cameras");
      if (!alive) return;
      draw();
    } catch (e) {
      note.textContent = `Cannot list cameras: ${e.message}`;
    }
    clearTimeout(timer);
    if (alive) timer = setTimeout(refresh, 5000);
  }

  function draw() {
    note.textContent = cams.length ? "" : "No camera yet: add one with its RTSP URL.";
    tbody.replaceChildren(...cams.map((c) => {
      const d = c.status_detail || {};
      const sub = c.streams && c.streams.sub;
      const h = health(c);
      const st = c.storage || {};
      const oldest = parseTime(st.oldest);
      const ret = c.retention || {};
      const retText = [ret.max_age_days ? `${ret.max_age_days} days` : null,
        ret.max_bytes ? fmtBytes(ret.max_bytes) : null].filter(Boolean).join(", ") || "default";
      return el("tr", { "data-camera-id": String(c.id), "data-status": c.status },
        el("td", null, el("span", { class: `dot ${h.cls}`, title: h.detail || h.text, role: "img", "aria-label": h.text })),
        el("td", null, el("a", { href: `#/camera/${c.id}` }, c.name), soundBadge(c), el("div.muted.small", null, c.url)),
        el("td.status-cell", null, el("span", { class: `sev ${h.cls}` }, h.text),
          h.detail ? el("div.small.bad-text", null, h.detail) : null,
          d.failures ? el("div.small.muted", null, `${d.failures} failed connection${d.failures > 1 ? "s" : ""}`) : null),
        el("td", null, [c.codec ? c.codec.toUpperCase() : (d.codec || "—"),
          d.width ? ` ${d.width}×${d.height}` : ""].join(""), subLine(c)),
        el("td.num", null, d.fps ? d.fps.toFixed(1) : "—"),
        el("td.num", null, fmtBitrate(d.bitrate_bps)),
        el("td.num", null, st.bytes !== undefined ? fmtBytes(st.bytes) : "—",
          sub && sub.storage && sub.storage.bytes ? el("div.small.muted", null, `+ ${fmtBytes(sub.storage.bytes)} sub`) : null),
        el("td", null, oldest ? [timeEl(oldest), el("div.small.muted", null, `${fmtDuration(Date.now() - oldest)} ago`)] : "—"),
        el("td", null, retText, ret.held_over_quota_bytes
          ? el("div.small.bad-text.holds-crowding", { title: "Retention cannot delete held footage" },
            `Evidence holds keep ${fmtBytes(ret.held_over_quota_bytes)} over the quota: they crowd out new recording`)
          : null),
        el("td.actions", null,
          iconButton("edit", "Edit", () => editCamera(c)),
          iconButton(c.enabled ? "pause" : "play", c.enabled ? "Disable" : "Enable", () => setEnabled(c, !c.enabled)),
          iconButton("delete", "Remove", () => remove(c), { cls: "danger" })));
    }));
  }

  /** A badge on cameras that record sound: who watches must know a microphone is on. */
  function soundBadge(c) {
    if (!c.record_audio) return null;
    return el("span.pill.sound-badge", { title: "This camera records sound (audio recording switched on by an admin)" }, "Sound");
  }

  /** The sub-stream under the main stream's video facts: its size and state. */
  function subLine(c) {
    const sub = c.streams && c.streams.sub;
    if (!c.sub_url || !sub) return null;
    const size = sub.width ? `${sub.width}×${sub.height}` : sub.status;
    return el("div.small.muted.sub-stream", { title: `Sub-stream ${c.sub_url}` },
      `sub ${size}${c.record_sub ? "" : " · live only"}`);
  }

  async function setEnabled(c, enabled) {
    try {
      await api("PATCH", `/api/cameras/${c.id}`, { enabled });
      toast(`${c.name} ${enabled ? "enabled" : "disabled"}.`, "ok");
    } catch (e) { toast(`Cannot change ${c.name}: ${e.message}`, "bad"); }
    refresh();
  }

  async function remove(c) {
    const bytes = c.storage && c.storage.bytes;
    const ok = await confirmDialog(`Remove ${c.name}?`,
      `The camera stops recording and all of its recordings${bytes ? ` (${fmtBytes(bytes)})` : ""} are deleted for good. This cannot be undone.`,
      "Remove camera and delete recordings");
    if (!ok) return;
    try {
      await api("DELETE", `/api/cameras/${c.id}?delete_recordings=true`);
      toast(`${c.name} removed.`, "ok");
    } catch (e) {
      if (e.kind === "held") {
        toast(`${c.name} keeps footage under evidence hold${(e.data.holds || []).length > 1 ? "s" : ""} ${(e.data.holds || []).map((h) => `#${h}`).join(", ")}: release ${(e.data.holds || []).length > 1 ? "them" : "it"} on the Evidence page first. Nothing was deleted.`, "bad");
      } else {
        toast(`Cannot remove ${c.name}: ${e.message}`, "bad");
      }
    }
    refresh();
  }

  async function editCamera(c) {
    const isNew = !c;
    const name = el("input#cam-name", { name: "name", required: true, maxLength: 64, value: c ? c.name : "", autocomplete: "off" });
    const url = el("input#cam-url", { name: "url", required: true, value: c ? c.url : "", placeholder: "rtsp://192.168.1.20:554/stream1",
      autocomplete: "off", spellcheck: false, inputmode: "url" });
    const user = el("input#cam-username", { name: "username", value: c && c.username ? c.username : "", autocomplete: "off", spellcheck: false });
    const pass = el("input#cam-password", { name: "password", type: "password", autocomplete: "new-password",
      placeholder: c && c.has_password ? "unchanged" : "" });
    const clearPass = el("input", { type: "checkbox" });
    const subUrl = el("input#cam-sub-url", { name: "sub_url", value: c && c.sub_url ? c.sub_url : "",
      placeholder: "rtsp://192.168.1.20:554/stream2 (optional)", autocomplete: "off", spellcheck: false, inputmode: "url" });
    const recordSub = el("input#cam-record-sub", { type: "checkbox", checked: c ? !!c.record_sub || !c.sub_url : true });
    // Off unless an admin switches it on: recording sound needs a stated justification.
    const recordAudio = el("input#cam-record-audio", { type: "checkbox", role: "switch", checked: !!(c && c.record_audio) });
    const audioReason = el("input#cam-audio-reason", { maxLength: 500, autocomplete: "off",
      placeholder: "e.g. disputes at the counter; DPIA reference" });
    const audioReasonField = field("Why (kept in the audit log with the switch)", audioReason);
    const syncReason = () => { audioReasonField.hidden = recordAudio.checked === !!(c && c.record_audio); };
    recordAudio.addEventListener("change", syncReason);
    syncReason();
    const subRet = (c && c.streams && c.streams.sub && c.streams.sub.retention) || {};
    const subMaxAge = el("input#cam-sub-max-age", { type: "number", min: "0", step: "1", inputmode: "numeric",
      value: subRet.max_age_days ? subRet.max_age_days : "", placeholder: "default" });
    const subMaxGb = el("input#cam-sub-max-gb", { type: "number", min: "0", step: "any", inputmode: "decimal",
      value: subRet.max_bytes ? (subRet.max_bytes / 1e9).toFixed(1) : "", placeholder: "default" });
    // Empty: the server's default; 0: no limit (as everywhere: config, CLI and API).
    const maxAge = el("input#cam-max-age", { type: "number", min: "0", step: "1", inputmode: "numeric",
      value: c && c.retention && c.retention.max_age_days ? c.retention.max_age_days : "", placeholder: "default" });
    const maxGb = el("input#cam-max-gb", { type: "number", min: "0", step: "any", inputmode: "decimal",
      value: c && c.retention && c.retention.max_bytes ? (c.retention.max_bytes / 1e9).toFixed(1) : "", placeholder: "default" });
    // Motion analysis (existing cameras): on/off and sensitivity; the mask is API-only for now.
    const motionOn = el("input#cam-motion", { type: "checkbox", checked: true });
    const sensitivity = el("select#cam-sensitivity", { "aria-label": "Motion sensitivity" },
      ...Array.from({ length: 10 }, (_, i) => el("option", { value: String(i + 1), selected: i + 1 === 5 },
        `${i + 1}${i + 1 === 5 ? " (default)" : i === 0 ? " (least)" : i === 9 ? " (most)" : ""}`)));
    let motionWas = null;
    if (c) {
      api("GET", `/api/cameras/${c.id}/motion/settings`).then((m) => {
        motionWas = m;
        motionOn.checked = m.enabled;
        sensitivity.value = String(m.sensitivity);
      }).catch(() => {});
    }
    const result = el("div.test-result#test-result", { role: "status", "aria-live": "polite" });
    const testBtn = el("button.btn#test-camera", { type: "button" }, icon("test"), el("span", null, "Test"));
    const err = el("p.error#camera-error", { role: "alert" });
    const urlOk = () => /^rtsp:\/\/[^\s/@]+(\/\S*)?$/i.test(url.value.trim()) &&
      (!subUrl.value.trim() || /^rtsp:\/\/[^\s/@]+(\/\S*)?$/i.test(subUrl.value.trim()));
    const syncTest = () => { testBtn.disabled = !urlOk(); };
    url.addEventListener("input", syncTest);
    subUrl.addEventListener("input", syncTest);
    syncTest();
    let skipProbe = false;

    testBtn.addEventListener("click", async () => {
      testBtn.disabled = true;
      result.className = "test-result pending";
      result.replaceChildren(el("span.spinner.inline"), " Testing the camera… this can take up to 10 s.");
      const sub = subUrl.value.trim();
      const untested = c && c.has_password && !pass.value && !clearPass.checked
        ? el("p.muted.small", null, "Tested without the stored password; type it to test with it.") : null;
      try {
        const r = await api("POST", "/api/cameras/test", { url: url.value.trim(), sub_url: sub || null,
          username: user.value.trim() || null, password: pass.value || null });
        const subOk = !r.sub || !r.sub.error;
        result.className = `test-result ${subOk ? "ok" : "bad"}`;
        result.replaceChildren(...[
          el("strong", null, !r.sub ? "The camera works." : subOk ? "Both streams work." : "The main stream works; the sub-stream does not."),
          el("div.test-streams", null, streamFacts("Main stream", r, ""),
            r.sub ? streamFacts("Sub-stream", r.sub, "sub-") : null),
          r.saw_key_frame === false ? el("p.warn-text", null, "No key frame arrived during the test: playback may start late. Check the camera's key-frame interval (I-frame interval).") : null,
          untested].filter(Boolean));
      } catch (e) {
        result.className = "test-result bad";
        const subResult = e.data && e.data.sub;
        result.replaceChildren(...[el("strong", null, `Test failed${e.kind ? `: ${e.kind}` : ""}`),
          el("p#test-error", { "data-kind": e.kind || "" }, KIND_TEXT[e.kind] || e.message),
          e.kind && KIND_TEXT[e.kind] && e.message ? el("p.muted.small", null, e.message) : null,
          subResult ? el("div.test-streams", null, streamFacts("Sub-stream", subResult, "sub-")) : null,
          untested].filter(Boolean));
      } finally { syncTest(); }
    });

    const content = [
      field("Name", name, "Short and unique, e.g. \"Front door\"."),
      field("RTSP URL", url, "The main (full-resolution) stream, without the user name and password."),
      field("Sub-stream URL", subUrl, "Optional: the camera's low-resolution stream (e.g. 640×360), for grid tiles, fast playback and thumbnails. Same user name and password."),
      el("label.check", null, recordSub, "Record the sub-stream (else it is used for live view only)"),
      el("label.check", null, recordAudio, "Record sound (the camera's AAC or G.711 audio)"),
      audioReasonField,
      el("p.muted.small", null, "Off by default. Recording sound needs a stated justification (UK GDPR and the Surveillance Camera Code); switching it on or off is written to the audit log."),
      el("div.row2", null, field("Username", user), field("Password", pass)),
      c && c.has_password ? el("label.check", null, clearPass, "Remove the stored password") : null,
      c ? el("div.row2", null, field("Keep at most (days)", maxAge, "Empty: the default; 0: no limit."),
        field("Keep at most (GB)", maxGb, "Empty: the default; 0: no limit.")) : null,
      c && c.streams && c.streams.sub ? el("div.row2", null,
        field("Sub-stream: keep at most (days)", subMaxAge, "Its own limit; empty: the default; 0: no limit."),
        field("Sub-stream: keep at most (GB)", subMaxGb, "Empty: the default; 0: no limit.")) : null,
      c ? el("div.row2", null, el("label.check", null, motionOn, "Motion analysis (indexes footage for motion search; never decides what is recorded)"),
        field("Motion sensitivity", sensitivity, "Higher finds fainter and smaller motion, and more noise.")) : null,
      el("div.test-row", null, testBtn, el("span.muted.small", null, "Connects to the camera; can take up to 10 s.")),
      result, err,
    ];
    await dialog(isNew ? "Add a camera" : `Edit ${c.name}`, content, [
      { label: "Cancel", value: null },
      { label: isNew ? "Add camera" : "Save", value: "save", cls: "primary" },
    ], {
      wide: true,
      onSubmit: async () => {
        err.textContent = "";
        const body = {};
        if (isNew) {
          Object.assign(body, { name: name.value.trim(), url: url.value.trim(),
            username: user.value.trim() || null, password: pass.value || null });
          if (subUrl.value.trim()) Object.assign(body, { sub_url: subUrl.value.trim(), record_sub: recordSub.checked });
          if (recordAudio.checked) body.record_audio = true;
          if (recordAudio.checked && audioReason.value.trim()) body.audio_reason = audioReason.value.trim();
          if (skipProbe) body.skip_probe = true;
        } else {
          if (name.value.trim() !== c.name) body.name = name.value.trim();
          if (url.value.trim() !== c.url) body.url = url.value.trim();
          if (subUrl.value.trim() !== (c.sub_url || "")) body.sub_url = subUrl.value.trim() || null;
          if (recordSub.checked !== !!c.record_sub && (subUrl.value.trim() || c.sub_url)) body.record_sub = recordSub.checked;
          if (recordAudio.checked !== !!c.record_audio) {
            body.record_audio = recordAudio.checked;
            if (audioReason.value.trim()) body.audio_reason = audioReason.value.trim();
          }
          if (user.value.trim() !== (c.username || "")) body.username = user.value.trim();
          if (clearPass.checked) body.password = "";
          else if (pass.value) body.password = pass.value;
          const age = maxAge.value ? Math.round(Number(maxAge.value)) : null;
          // A positive quota is at least one byte (0 means no limit).
          const bytes = maxGb.value ? (Number(maxGb.value) > 0 ? Math.max(1, Math.round(Number(maxGb.value) * 1e9)) : 0) : null;
          if (age !== ((c.retention && c.retention.max_age_days) || null)) body.retain_max_age_days = age;
          if (bytes !== ((c.retention && c.retention.max_bytes) || null)) body.retain_max_bytes = bytes;
          if (c.streams && c.streams.sub) {
            const subAge = subMaxAge.value ? Math.round(Number(subMaxAge.value)) : null;
            const subBytes = subMaxGb.value ? (Number(subMaxGb.value) > 0 ? Math.max(1, Math.round(Number(subMaxGb.value) * 1e9)) : 0) : null;
            if (subAge !== (subRet.max_age_days || null)) body.sub_retain_max_age_days = subAge;
            if (subBytes !== (subRet.max_bytes || null)) body.sub_retain_max_bytes = subBytes;
          }
          if (motionWas && (motionOn.checked !== motionWas.enabled || Number(sensitivity.value) !== motionWas.sensitivity)) {
            try {
              await api("PATCH", `/api/cameras/${c.id}/motion/settings`,
                { enabled: motionOn.checked, sensitivity: Number(sensitivity.value) });
            } catch (e) { err.textContent = `Motion settings: ${e.message}`; return false; }
            if (!Object.keys(body).length) { toast(`${c.name}: motion settings saved.`, "ok"); refresh(); return true; }
          }
          if (!Object.keys(body).length) return true;
        }
        const submit = document.querySelector("dialog[open] button.primary");
        if (submit) submit.disabled = true;
        if (isNew && !skipProbe) err.textContent = "Testing the camera before adding it (up to 10 s)…";
        try {
          if (isNew) await api("POST", "/api/cameras", body);
          else await patchConfirmingDeletes(c, body);
          toast(isNew ? `${body.name} added: recording starts within seconds.` : `${name.value} saved.`, "ok");
          refresh();
          return true;
        } catch (e) {
          err.textContent = `${KIND_TEXT[e.kind] || e.message}${e.kind ? ` (${e.kind})` : ""}`;
          if (isNew && e.status === 422 && !skipProbe) {
            skipProbe = true;
            err.textContent += " Press \"Add camera\" again to add it anyway; it will be retried until it answers.";
          }
          return false;
        } finally {
          if (submit) submit.disabled = false;
        }
      },
    });
  }

  /** What a test found of one stream: codec, size and frame rate, or why it failed. */
  function streamFacts(title, r, prefix) {
    if (r.error) {
      return el("div.test-stream.bad", null, el("h3", null, title),
        el(`p#test-${prefix}error`, { "data-kind": r.kind || "" }, KIND_TEXT[r.kind] || r.error),
        r.kind && KIND_TEXT[r.kind] ? el("p.muted.small", null, r.error) : null);
    }
    return el("div.test-stream", null, el("h3", null, title), el("dl.facts", null,
      el("dt", null, "Codec"), el(`dd#test-${prefix}codec`, null, `${(r.codec || "").toUpperCase()} (${r.rfc6381_codec || "?"})`),
      el("dt", null, "Resolution"), el(`dd#test-${prefix}resolution`, null, `${r.width}×${r.height}`),
      el("dt", null, "Frame rate"), el(`dd#test-${prefix}fps`, null, r.fps ? `${Number(r.fps).toFixed(1)} fps` : "unknown"),
      el("dt", null, "Audio"), el(`dd#test-${prefix}audio`, null, audioText(r))));
  }

  /** The audio a camera test found: codec, rate, channels, and whether it can be recorded. */
  function audioText(r) {
    const a = r.audio;
    if (!a) return r.has_audio ? "yes" : "none";
    const names = { aac: "AAC", pcma: "G.711 A-law (PCMA)", pcmu: "G.711 µ-law (PCMU)" };
    const channels = a.channels === 1 ? "mono" : a.channels === 2 ? "stereo" : `${a.channels} channels`;
    const text = `${names[a.codec] || a.encoding.toUpperCase()}, ${a.clock_rate_hz / 1000} kHz, ${channels}`;
    return a.codec ? `${text} (recorded only if "Record sound" is on)` : `${text} (cannot be recorded)`;
  }

  // A retention change that deletes footage now is refused until the person confirms what it
  // deletes (409 retention_deletes); then it is sent again with confirm_delete.
  async function patchConfirmingDeletes(c, body) {
    try {
      return await api("PATCH", `/api/cameras/${c.id}`, body);
    } catch (e) {
      if (e.kind !== "retention_deletes") throw e;
      const d = e.data || {};
      const ok = await confirmDialog(`Delete footage of ${c.name} now?`,
        `These limits delete ${d.would_delete_segments} segments (${fmtBytes(d.would_delete_bytes || 0)}) of recordings right away` +
        `${d.new_oldest ? `; the oldest footage kept will be from ${new Date(d.new_oldest).toLocaleString()}` : ""}. ` +
        "Footage under evidence holds is kept. This cannot be undone.",
        "Apply and delete footage");
      if (!ok) throw new Error("Not saved: no footage was deleted.");
      return await api("PATCH", `/api/cameras/${c.id}`, { ...body, confirm_delete: true });
    }
  }

  refresh();
  return { unmount() { alive = false; clearTimeout(timer); } };
}
