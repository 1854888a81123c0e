// The API client: JSON over fetch with the session cookie, the CSRF token on every non-GET,
// errors as ApiError (status, kind, message), and the current session (who is logged in).
// Every request the UI makes goes through here, to the recorder's own origin only.

/** The logged-in user: {username, role, csrf_token}, or null. */
export const session = { user: null };

/** Called when the server says the session is gone (401); set by app.js. */
let onUnauthorized = () => {};
export function setUnauthorizedHandler(f) { onUnauthorized = f; }

export class ApiError extends Error {
  constructor(status, message, kind, data) {
    super(message);
    this.status = status;
    this.kind = kind || null;
    /** The whole error body: some errors carry fields (e.g. would_delete_bytes, holds). */
    this.data = data || {};
  }
}

/** Routes that answer 401 for a bad login rather than a lost session. */
const NO_SESSION_ROUTES = new Set(["/api/login", "/api/setup", "/api/me", "/api/me/password"]);

/**
 * Calls the API. `body` (an object) is sent as JSON. Resolves to the parsed JSON (null for an
 * empty body); rejects with ApiError on any non-2xx status.
 */
export async function api(method, path, body, { signal } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && session.user) headers["X-CSRF-Token"] = session.user.csrf_token;
  let r;
  try {
    r = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
      signal,
    });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, "The recorder cannot be reached (network error).", "network");
  }
  const text = await r.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = { error: text.slice(0, 200) }; }
  }
  if (!r.ok) {
    const msg = (data && data.error) || r.statusText || `HTTP ${r.status}`;
    const err = new ApiError(r.status, msg, data && data.kind, data);
    if (r.status === 401 && !NO_SESSION_ROUTES.has(path.split("?")[0])) {
      session.user = null;
      onUnauthorized();
    }
    throw err;
  }
  return data;
}

export const isAdmin = () => session.user && session.user.role === "admin";
/** Evidence and admin users may export, hold and read the audit log. */
export const canEvidence = () => !!session.user && (session.user.role === "evidence" || session.user.role === "admin");

/** `start`/`end` query string for a range of epoch milliseconds. */
export function rangeQuery(startMs, endMs) {
  const s = new Date(startMs).toISOString();
  const e = new Date(endMs).toISOString();
  return `start=${encodeURIComponent(s)}&end=${encodeURIComponent(e)}`;
}

/** The codecs this browser can decode through Media Source Extensions, for `?codecs=`. */
export function decodableCodecs() {
  const ms = window.MediaSource;
  const can = (c) => !!ms && MediaSource.isTypeSupported(`video/mp4; codecs="${c}"`);
  const list = [];
  if (can("avc1.42E01E") || can("avc1.64001f")) list.push("h264");
  if (can("hvc1.1.6.L93.B0") || can("hev1.1.6.L93.B0")) list.push("h265");
  return list.length ? list : ["h264"];
}

/** Whether a `<video src>` can play an RFC 6381 codec string (e.g. a run's `codec`). */
export function canPlayCodec(rfc6381) {
  if (!rfc6381) return true;
  const type = `video/mp4; codecs="${rfc6381}"`;
  const v = document.createElement("video");
  const ms = window.MediaSource && MediaSource.isTypeSupported(type);
  return v.canPlayType(type) !== "" && ms !== false;
}
