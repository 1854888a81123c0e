-- Migration 3: integrity from ingest time (per-camera hash chain of segments, signed chain
-- heads), the tamper-evident audit log, evidence holds and exports.

-- The hash chain: chain = SHA-256("nvr/v1/chain" || prev_chain || id || camera_id || start_90k
-- || end_90k || frames || sha256), all integers as 8-byte big-endian. prev_chain is the chain
-- of the camera's previous sealed segment (32 zero bytes for its first). NULL while open.
-- prev_segment_id names the segment whose chain is prev_chain (it may since have been deleted
-- by retention, which records the deletion in the audit log).
ALTER TABLE segments ADD COLUMN prev_segment_id INTEGER;
ALTER TABLE segments ADD COLUMN prev_chain_sha256 BLOB;
ALTER TABLE segments ADD COLUMN chain_sha256 BLOB;
-- The camera's chain head: the chain of its newest sealed segment (NULL before the first).
-- Kept here so retention deleting old segments never restarts the chain.
ALTER TABLE cameras ADD COLUMN chain_segment_id INTEGER;
ALTER TABLE cameras ADD COLUMN chain_sha256 BLOB;

-- Chain heads signed with the recorder's Ed25519 key (DATA_DIR/signing.key): periodically and at
-- every export. The signature covers "nvr/v1/chain-head" || camera_id || segment_id ||
-- chain_sha256 || signed_90k (integers 8-byte big-endian).
CREATE TABLE chain_heads (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  camera_id INTEGER NOT NULL,
  -- The segment whose chain value is signed (it may since have been deleted by retention).
  segment_id INTEGER NOT NULL,
  chain_sha256 BLOB NOT NULL,
  signed_90k INTEGER NOT NULL,
  signature BLOB NOT NULL
);

CREATE INDEX chain_heads_camera_segment ON chain_heads (camera_id, segment_id);

-- The audit log: append-only; each entry hashes the previous one, so deleting or editing a row
-- breaks the chain (`nvr check` names the entry). sha256 = SHA-256("nvr/v1/audit" || prev_sha256
-- || id || time_90k || len-prefixed actor, action, object, detail).
CREATE TABLE audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  time_90k INTEGER NOT NULL,
  -- Who: a username, "cli:<user>", or "system".
  actor TEXT NOT NULL,
  -- What, e.g. login, login_failed, live_view, playback, export, hold, camera_add, user_change.
  action TEXT NOT NULL,
  -- On what, e.g. "camera:3", "user:alice", "export:12", "hold:4".
  object TEXT NOT NULL,
  -- Details as canonical JSON (sorted keys, no whitespace).
  detail TEXT NOT NULL,
  prev_sha256 BLOB NOT NULL,
  sha256 BLOB NOT NULL
);

CREATE INDEX audit_object ON audit (object, time_90k);

-- Evidence holds: a held range is exempt from retention until released.
CREATE TABLE holds (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  camera_id INTEGER NOT NULL REFERENCES cameras (id),
  start_90k INTEGER NOT NULL,
  end_90k INTEGER NOT NULL,
  case_ref TEXT NOT NULL,
  reason TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_90k INTEGER NOT NULL,
  -- Set when released; a released hold no longer protects anything.
  released_by TEXT,
  released_90k INTEGER
);

CREATE INDEX holds_camera ON holds (camera_id, start_90k);

-- Export bundles made through the API (DATA_DIR/exports/<id>.zip).
CREATE TABLE exports (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  created_by TEXT NOT NULL,
  created_90k INTEGER NOT NULL,
  -- JSON array of camera ids.
  cameras TEXT NOT NULL,
  start_90k INTEGER NOT NULL,
  end_90k INTEGER NOT NULL,
  case_ref TEXT NOT NULL,
  reason TEXT NOT NULL,
  -- 'running', 'ready' or 'failed'.
  state TEXT NOT NULL CHECK (state IN ('running', 'ready', 'failed')),
  bytes INTEGER,
  -- SHA-256 of the bundle file, once ready.
  sha256 BLOB,
  error TEXT,
  finished_90k INTEGER
);
