// Status page (admin): version and uptime, disk total/free and recordings bytes, per-camera
// bytes and retention horizon, the evidence signing key's fingerprint (what verifiers of
// exported bundles pin) with every key used before, TLS state with the local CA's fingerprint
// and a link to download /api/tls/ca.pem for installing on client machines. Refreshed every 10 s.

import { api } from "/js/api.js";
import { el, timeEl, fmtBytes, fmtDuration, parseTime } from "/js/util.js";

export function mount(root) {
  const body = el("div.status-body", null, el("p.muted", null, "Loading…"));
  root.append(el("div.page-head", null, el("h1", null, "Status")), body);
  let alive = true;
  let timer = null;

  async function refresh() {
    try {
      const s = await api("GET", "/api/status");
      if (!alive) return;
      body.replaceChildren(...draw(s));
    } catch (e) {
      if (alive) body.replaceChildren(el("p.error", null, e.status === 404
        ? "This recorder does not report its status yet (no /api/status)." : `Cannot read the status: ${e.message}`));
    }
    if (alive) timer = setTimeout(refresh, 10000);
  }

  function draw(s) {
    const disk = s.disk || {};
    const used = disk.total_bytes ? 1 - disk.free_bytes / disk.total_bytes : 0;
    const started = parseTime(s.started);
    const bar = el("div.meter", { role: "meter", "aria-valuemin": "0", "aria-valuemax": "100",
      "aria-valuenow": String(Math.round(used * 100)), "aria-label": "Disk used" }, el("div.meter-fill"));
    bar.firstChild.style.width = `${(used * 100).toFixed(1)}%`;
    if (used > 0.9) bar.classList.add("bad");
    const tls = s.tls || {};
    return [
      el("section.card", null, el("h2", null, "Recorder"), el("dl.facts", null,
        el("dt", null, "Version"), el("dd#status-version", null, s.version || "—"),
        el("dt", null, "Running since"), el("dd", null, started ? [timeEl(started), ` (${fmtDuration(Date.now() - started)})`] : "—"),
        el("dt", null, "Data directory"), el("dd", null, el("code", null, s.data_dir || "—")))),
      el("section.card", null, el("h2", null, "Disk"), bar, el("dl.facts", null,
        el("dt", null, "Total"), el("dd", null, fmtBytes(disk.total_bytes)),
        el("dt", null, "Free"), el("dd", null, fmtBytes(disk.free_bytes)),
        el("dt", null, "Recordings"), el("dd#status-recordings", null, fmtBytes(disk.recordings_bytes)))),
      el("section.card.wide", null, el("h2", null, "Cameras"), el("div.table-wrap", null, el("table.list", null,
        el("thead", null, el("tr", null, ...["Camera", "Stored", "Oldest recording", "Newest", "Retention horizon", "Retention limit"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", null, ...(s.cameras || []).map((c) => el("tr", null,
          el("td", null, el("a", { href: `#/camera/${c.id}` }, c.name)),
          el("td.num", null, fmtBytes(c.bytes)),
          el("td", null, timeEl(parseTime(c.oldest))),
          el("td", null, timeEl(parseTime(c.newest))),
          el("td", null, horizon(c)),
          el("td", null, limit(c)))))))),
      signingKeys(s),
      el("section.card.wide", null, el("h2", null, "Encryption in transit (TLS)"),
        el("p", null, tls.enabled ? el("span.sev.recording", null, "HTTPS is on") : el("span.sev.connecting", null, "HTTPS is off: this page travels unencrypted")),
        tls.ca_fingerprint_sha256 ? el("dl.facts", null,
          el("dt", null, "CA fingerprint (SHA-256)"), el("dd", null, el("code.fingerprint#ca-fingerprint", null, tls.ca_fingerprint_sha256))) : null,
        tls.ca_url || tls.enabled ? el("p", null,
          el("a.btn", { href: tls.ca_url || "/api/tls/ca.pem", download: "nvr-ca.pem" }, "Download the CA certificate"),
          " Install it on each client machine as a trusted authority, after checking that its fingerprint matches the one above.") : null),
    ];
  }

  refresh();
  return { unmount() { alive = false; clearTimeout(timer); } };
}

/** The key that signs evidence bundles, and every key the recorder has signed with. */
function signingKeys(s) {
  const keys = s.signing_keys || [];
  return el("section.card.wide#signing-key", null, el("h2", null, "Evidence signing key"),
    el("dl.facts", null,
      el("dt", null, "Fingerprint"),
      el("dd", null, el("code.fingerprint.grouped#signing-key-fingerprint", null, s.signing_key_fingerprint || "—"))),
    el("p.muted", null, "Exported evidence bundles are signed with this key. A bundle carries its own key, so ",
      "whoever checks one must get this fingerprint from you through a channel they trust (not from the bundle), ",
      "compare it character by character, and pin it: ", el("code", null, "nvr verify --expect-key FINGERPRINT bundle.zip"),
      ". ", el("code", null, "nvr key show"), " on the recorder prints the same."),
    keys.length ? el("div.table-wrap", null, el("table.list", null,
      el("thead", null, el("tr", null, ...["Key fingerprint", "First used", "Retired", ""].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody#signing-keys", null, ...keys.map((k) => el("tr", { "data-current": k.current ? "true" : "false" },
        el("td", null, el("code.fingerprint.grouped", null, k.fingerprint)),
        el("td", null, timeEl(parseTime(k.first_used))),
        el("td", null, k.retired ? timeEl(parseTime(k.retired)) : "—"),
        el("td", null, k.current ? el("span.sev.recording", null, "Current") : el("span.muted", null, "Retired"))))))) : null);
}

/** How far back this camera's footage goes (now - oldest), or the server's own figure. */
function horizon(c) {
  if (typeof c.retention_horizon_days === "number") return `${c.retention_horizon_days.toFixed(1)} days`;
  const oldest = parseTime(c.oldest);
  return oldest && c.bytes ? fmtDuration(Date.now() - oldest) : "—";
}

/** The retention settings in force: age and/or bytes. */
function limit(c) {
  const parts = [];
  if (c.retention_max_age_days) parts.push(`${c.retention_max_age_days} days`);
  if (c.retention_max_bytes) parts.push(fmtBytes(c.retention_max_bytes));
  return parts.length ? parts.join(", ") : "—";
}
