// Evidence dialogs of the camera page (evidence and admin roles):
// - exportDialog: cameras (this one preselected; one range for all), case reference, reason
//   (required), an optional working copy with the time in the picture, the range and its exact length; POST /api/exports (202), then the export's
//   progress (GET /api/exports/{id} polled every POLL_MS) until it is ready (download link,
//   SHA-256 of the bundle, how to verify it offline) or failed (its error).
// - holdDialog: case and reason for a hold on this camera's range; POST /api/holds.
// Also exportStatus(), the state/progress/download view shared with the Evidence page.

import { api } from "/js/api.js";
import { el, icon, field, timeEl, fmtSpan, fmtBytes, toast } from "/js/util.js";
import { MAX_EXPORT_MS } from "/js/range-bar.js";

const POLL_MS = 700;

/** A modal built by hand (the shared dialog() closes on submit; these ones change phase). */
function modal(title, id) {
  const heading = el("h2", { id: `${id}-title` }, title);
  const body = el("div.dialog-content");
  const buttons = el("div.dialog-buttons");
  const form = el("form.dialog-body", { method: "dialog", noValidate: false }, heading, body, buttons);
  const dlg = el(`dialog.modal.wide#${id}`, { "aria-labelledby": heading.id }, form);
  document.body.append(dlg);
  return { dlg, form, body, buttons, heading };
}

/** The range as facts: from, to (local time, UTC on hover) and the exact length. */
function rangeFacts(start, end, idPrefix) {
  return el("dl.facts.range-facts", null,
    el("dt", null, "From"), el("dd", null, timeEl(start)),
    el("dt", null, "To"), el("dd", null, timeEl(end)),
    el("dt", null, "Length"), el(`dd#${idPrefix}-duration`, null, fmtSpan(end - start)));
}

/** State, progress, download and hash of one export (dialog and Evidence page alike). */
export function exportStatus(x, { ids = false } = {}) {
  const id = (name) => (ids ? `export-${name}` : undefined);
  const out = [];
  const label = { running: "Running", ready: "Ready", failed: "Failed", expired: "Expired" }[x.state] || x.state;
  const sev = { running: "connecting", ready: "recording", failed: "reconnecting" }[x.state] || "disabled";
  out.push(el("div.export-state", null,
    el("span", { class: `sev ${sev}`, id: id("state"), "data-state": x.state }, label),
    x.state === "running" ? el("span.muted.small", null, ` ${Math.round((x.progress || 0) * 100)} %`) : null));
  if (x.state === "running") {
    out.push(el("progress.export-progress", { id: id("progress-bar"), max: 1, value: x.progress || 0,
      "aria-label": `Export ${x.id} progress` }));
  }
  if (x.state === "failed") {
    out.push(el("p.error.export-error", { role: "alert" }, x.error || "The export failed."));
  }
  if (x.state === "expired") {
    out.push(el("p.muted.small", null, "The bundle was deleted when it expired (evidence.export_keep_days); its record and audit entries remain."));
  }
  if (x.state === "ready" && !x.download) {
    out.push(el("p.muted.small", null, "Written by the command line to a file of its own; not kept on the recorder."));
  }
  if (x.state === "ready" && x.download) {
    out.push(el("p.export-download", null,
      el("a.btn.primary", { href: x.download, download: `nvr-export-${x.id}.zip`, id: id("download") },
        icon("export"), el("span", null, "Download bundle")),
      x.bytes !== null && x.bytes !== undefined ? el("span.muted", null, ` ${fmtBytes(x.bytes)} · nvr-export-${x.id}.zip`) : null));
    if (x.sha256) {
      out.push(el("div.sha", null, el("span.muted.small", null, "SHA-256 of the bundle"),
        el("code.fingerprint", { id: id("sha256") }, x.sha256)));
    }
    out.push(el("p.small.verify-state", { id: id("verified"), "data-verified": String(!!x.verified) },
      x.verified
        ? el("span.sev.recording", null, "Verified")
        : el("span.sev.reconnecting", null, "Not verified"),
      x.verified
        ? " by the recorder after writing: signature, every file hash, each segment against the hash recorded at ingest, and the signed chain."
        : " The recorder could not verify this bundle."));
    out.push(el("p.muted.small.verify-hint", null, "Anyone can verify it again offline with ",
      el("code", null, `nvr verify --expect-key <fingerprint> nvr-export-${x.id}.zip`),
      " (exit code 0: intact and signed by this recorder's key; 3: intact but the key is not pinned), where the fingerprint is this recorder's signing key as the Status page shows it, or by hand as its README.txt explains."));
  }
  return out;
}

/**
 * The export dialog for `range` {start, end} of camera `camera` ({id, name}); `cameras` is
 * every camera (others can be added, same range). Resolves when it closes.
 */
export function exportDialog({ camera, cameras, start, end }) {
  return new Promise((resolve) => {
    const m = modal("Export evidence", "export-dialog");
    const tooLong = end - start > MAX_EXPORT_MS;
    const boxes = cameras.map((c) => el("input", { type: "checkbox", name: "export-camera",
      value: String(c.id), checked: c.id === camera.id, "data-camera-id": String(c.id) }));
    const allBox = el("input#export-all", { type: "checkbox", checked: cameras.length === 1 });
    allBox.addEventListener("change", () => { for (const b of boxes) b.checked = allBox.checked || b.value === String(camera.id); });
    const camList = el("fieldset.camera-picks", null,
      el("legend", null, "Cameras ", el("span.muted.small", null, "(the same range for all)")),
      el("div.camera-pick-list", null, ...cameras.map((c, i) => el("label.check", null, boxes[i], c.name,
        c.id === camera.id ? el("span.muted.small", null, " (this camera)") : null))),
      cameras.length > 1 ? el("label.check.small", null, allBox, "All cameras") : null);
    const caseInput = el("input#export-case", { maxLength: 1000, autocomplete: "off", spellcheck: false,
      placeholder: "e.g. 2026/0042" });
    const reason = el("textarea#export-reason", { required: true, maxLength: 1000, rows: 3,
      placeholder: "Why this footage is exported (required)" });
    const workingCopy = el("input#export-working-copy", { type: "checkbox" });
    const err = el("p.error#export-error", { role: "alert" });
    const status = el("div.export-status#export-status", { hidden: true, "aria-live": "polite" });
    const inputs = el("div.export-inputs", null, camList,
      field("Case reference", caseInput, "Groups exports on the Evidence page; stored in the signed manifest."),
      field("Reason", reason, "Required. Stored in the manifest and the audit log."),
      el("label.check", null, workingCopy,
        "Add a working copy with the time in the picture (re-encoded for viewing; slow; the original stays the evidence)"));
    m.body.append(rangeFacts(start, end, "export"),
      ...(tooLong ? [el("p.error", null, "An export covers at most 24 hours: shorten the range.")] : []),
      inputs, err, status);
    const cancel = el("button.btn#export-cancel", { type: "button" }, "Cancel");
    const submit = el("button.btn.primary#export-submit", { type: "submit", disabled: tooLong }, icon("export"), el("span", null, "Start export"));
    m.buttons.append(cancel, submit);

    let exportId = null;
    let state = null;
    let timer = null;
    let closed = false;
    cancel.addEventListener("click", () => m.dlg.close());
    m.dlg.addEventListener("close", () => {
      closed = true;
      clearTimeout(timer);
      if (exportId !== null && state === "running") {
        toast(`Export ${exportId} goes on in the background: see the Evidence page.`, "info", 6000);
      }
      m.dlg.remove();
      resolve(exportId);
    });

    m.form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (exportId !== null) return;
      err.textContent = "";
      const ids = boxes.filter((b) => b.checked).map((b) => Number(b.value));
      if (!ids.length) { err.textContent = "Pick at least one camera."; return; }
      if (!reason.value.trim()) { err.textContent = "A reason is required."; reason.focus(); return; }
      submit.disabled = true;
      try {
        const x = await api("POST", "/api/exports", { cameras: ids, start: new Date(start).toISOString(),
          end: new Date(end).toISOString(), case: caseInput.value.trim(), reason: reason.value.trim(),
          working_copy: workingCopy.checked });
        exportId = x.id;
        for (const i of [...boxes, allBox, caseInput, reason, workingCopy]) i.disabled = true;
        inputs.classList.add("locked");
        submit.hidden = true;
        cancel.textContent = "Close";
        cancel.focus(); // the focused submit button is gone: keep focus (and Esc) in the dialog
        m.heading.textContent = `Export ${x.id}${x.case ? ` · case ${x.case}` : ""}`;
        show(x);
      } catch (e) {
        submit.disabled = false;
        submit.focus(); // disabling it dropped the focus out of the dialog (and Esc with it)
        err.textContent = e.status === 403 ? "Your role cannot export recordings." : e.message;
      }
    });

    function show(x) {
      state = x.state;
      status.hidden = false;
      status.replaceChildren(...exportStatus(x, { ids: true }));
      if (x.state === "running" && !closed) timer = setTimeout(poll, POLL_MS);
      if (x.state === "ready") {
        const a = status.querySelector("#export-download");
        if (a) a.focus();
      }
    }

    async function poll() {
      try {
        const x = await api("GET", `/api/exports/${exportId}`);
        if (!closed) show(x);
      } catch (e) {
        if (closed) return;
        err.textContent = `Cannot follow the export: ${e.message}`;
        timer = setTimeout(poll, POLL_MS * 4);
      }
    }

    m.dlg.showModal();
    reason.focus();
  });
}

/** The hold dialog for camera `camera` over [start, end); resolves to the hold or null. */
export function holdDialog({ camera, start, end }) {
  return new Promise((resolve) => {
    const m = modal(`Hold recordings of ${camera.name}`, "hold-dialog");
    const caseInput = el("input#hold-case", { maxLength: 1000, autocomplete: "off", spellcheck: false, placeholder: "e.g. 2026/0042" });
    const reason = el("textarea#hold-reason", { required: true, maxLength: 1000, rows: 3,
      placeholder: "Why this footage must be kept (required)" });
    const err = el("p.error#hold-error", { role: "alert" });
    m.body.append(
      el("p.muted", null, "Retention will not delete these recordings until the hold is released on the Evidence page."),
      rangeFacts(start, end, "hold"), field("Case reference", caseInput), field("Reason", reason), err);
    const cancel = el("button.btn", { type: "button" }, "Cancel");
    const submit = el("button.btn.primary#hold-submit", { type: "submit" }, icon("hold"), el("span", null, "Place hold"));
    m.buttons.append(cancel, submit);
    let result = null;
    cancel.addEventListener("click", () => m.dlg.close());
    m.dlg.addEventListener("close", () => { m.dlg.remove(); resolve(result); });
    m.form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      err.textContent = "";
      if (!reason.value.trim()) { err.textContent = "A reason is required."; reason.focus(); return; }
      submit.disabled = true;
      try {
        result = await api("POST", "/api/holds", { camera: camera.id, start: new Date(start).toISOString(),
          end: new Date(end).toISOString(), case: caseInput.value.trim(), reason: reason.value.trim() });
        m.dlg.close();
      } catch (e) {
        submit.disabled = false;
        err.textContent = e.status === 403 ? "Your role cannot place holds." : e.message;
      }
    });
    m.dlg.showModal();
    reason.focus();
  });
}
