-- The current schema, fresh. Keep equal to applying migrations/ in order: the test
-- upgraded_equals_fresh compares the two. Bump SCHEMA_VERSION in db/mod.rs with each migration.

-- Recording: cameras, video parameters, epochs, segments and the garbage list.

CREATE TABLE meta (
  -- Exactly one row.
  id INTEGER PRIMARY KEY CHECK (id = 1),
  -- Random id of this data directory; a segment file names its camera and segment, and the
  -- epoch keys are bound to this directory's master key, so files from another data directory
  -- fail authentication.
  data_dir_uuid BLOB NOT NULL,
  -- When `nvr init` ran, 90 kHz since the Unix epoch.
  created_90k INTEGER NOT NULL,
  -- The first-run setup code (sealed under the master key with AES-256-GCM), while no account
  -- exists and the server listens beyond loopback: `nvr init` and `nvr serve` print it on the
  -- console, and POST /api/setup must present it. Cleared when the first account is created.
  setup_code_sealed BLOB
);

CREATE TABLE cameras (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  -- Short unique name shown in the UI and used by the CLI.
  name TEXT NOT NULL UNIQUE,
  -- RTSP username, or NULL (shared by the camera's streams).
  username TEXT,
  -- RTSP password sealed with AES-256-GCM under a key derived from the master key
  -- (nonce || ciphertext || tag), or NULL. Never returned by the API, never logged.
  password_sealed BLOB,
  -- 0 = do not record (nor stream live) any of its streams.
  enabled INTEGER NOT NULL DEFAULT 1,
  created_90k INTEGER NOT NULL,
  -- 1 = record the main stream's audio (AAC, G.711) beside its video. Off by default: an
  -- admin switches it on per camera (audited), since recording sound needs a justification.
  record_audio INTEGER NOT NULL DEFAULT 0
);

-- The streams of each camera: its main stream, and optionally a low-resolution sub-stream.
-- Each stream is recorded with its own runs, segments, hash chain and retention.
CREATE TABLE streams (
  camera_id INTEGER NOT NULL REFERENCES cameras (id),
  -- 0 = main (every camera has it), 1 = sub; room for more (e.g. a camera's third stream).
  stream INTEGER NOT NULL,
  -- rtsp:// URL without credentials (a camera's streams share its username and password).
  -- NULL for a sub-stream that was removed from the camera: its recordings and its chain stay
  -- until retention or the camera's deletion takes them.
  url TEXT,
  -- 0 = pulled for live view only, not recorded.
  record INTEGER NOT NULL DEFAULT 1,
  -- Retention overrides of this stream; NULL means the server default, 0 no limit.
  retain_max_bytes INTEGER,
  retain_max_age_secs INTEGER,
  -- The stream's chain head: the chain of its newest sealed segment (NULL before the first).
  -- Kept here so retention deleting old segments never restarts the chain.
  chain_segment_id INTEGER,
  chain_sha256 BLOB,
  -- The latest camera clock offset observed from its RTCP sender reports: camera time minus
  -- recorder time (90 kHz, positive: the camera is ahead), and when (recorder time); NULL
  -- until a report arrived.
  clock_offset_90k INTEGER,
  clock_measured_90k INTEGER,
  PRIMARY KEY (camera_id, stream)
);

CREATE TABLE video_params (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  -- 'h264' or 'h265'.
  codec TEXT NOT NULL,
  -- RFC 6381 codec string, e.g. avc1.64001f.
  rfc6381_codec TEXT NOT NULL,
  width INTEGER NOT NULL,
  height INTEGER NOT NULL,
  -- Complete MP4 avc1/hvc1 sample entry box (holds the SPS/PPS/VPS). This, and the WAL of this
  -- database, are the only places outside encrypted segments where stream headers exist.
  sample_entry BLOB NOT NULL,
  -- SHA-256 of the encoded parameters record, to deduplicate.
  sha256 BLOB NOT NULL UNIQUE
);

CREATE TABLE epochs (
  -- Also names the wrapped key file keys/<id>.key.
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  camera_id INTEGER NOT NULL REFERENCES cameras (id),
  -- UTC day 'YYYY-MM-DD' whose segments this key protects.
  day TEXT NOT NULL,
  -- 1 once the key file was deleted (every segment under it is gone for good). A shredded
  -- epoch is never used again: a new segment of its day gets a new epoch.
  shredded INTEGER NOT NULL DEFAULT 0
);

-- One live epoch per camera and day; shredded ones may share it.
CREATE UNIQUE INDEX epochs_live_camera_day ON epochs (camera_id, day) WHERE shredded = 0;

CREATE TABLE segments (
  -- Never reused (AUTOINCREMENT), because it is part of the segment key derivation.
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  camera_id INTEGER NOT NULL REFERENCES cameras (id),
  -- The camera's stream (see `streams.stream`). Segment files are
  -- segments/<camera id>/<segment id>.seg whatever their stream: ids are unique across
  -- streams, and this column says which stream a file is.
  stream INTEGER NOT NULL DEFAULT 0,
  -- Id of the first segment of the run this one belongs to; a run is uninterrupted recording
  -- of one stream.
  run_id INTEGER NOT NULL,
  epoch_id INTEGER NOT NULL REFERENCES epochs (id),
  video_params_id INTEGER NOT NULL REFERENCES video_params (id),
  -- 0 = open (being written; frame_index and sha256 are NULL), 1 = sealed.
  state INTEGER NOT NULL,
  -- Wall-clock placement, 90 kHz since the Unix epoch; [start, end).
  start_90k INTEGER NOT NULL,
  end_90k INTEGER NOT NULL,
  -- Sum of frame durations from RTP timestamps, 90 kHz.
  media_duration_90k INTEGER NOT NULL,
  frames INTEGER NOT NULL,
  key_frames INTEGER NOT NULL,
  -- Sum of frame payload sizes (the video bytes an MP4 of this segment would hold).
  video_bytes INTEGER NOT NULL,
  -- Size of the encrypted file.
  file_bytes INTEGER NOT NULL,
  -- SHA-256 of the segment's plaintext records, computed while writing.
  sha256 BLOB,
  -- Compact frame index (see frame_index.rs).
  frame_index BLOB,
  -- Bit 0: recovered after a crash. Bit 1: the run ended here because the clock jumped.
  flags INTEGER NOT NULL DEFAULT 0,
  -- The stream's hash chain (see the evidence tables below); NULL while open. prev_segment_id
  -- names the segment whose chain is prev_chain (it may since have been deleted by retention, which
  -- records the deletion in the audit log).
  prev_segment_id INTEGER,
  prev_chain_sha256 BLOB,
  chain_sha256 BLOB
);

CREATE INDEX segments_stream_start ON segments (camera_id, stream, start_90k);
CREATE INDEX segments_epoch ON segments (epoch_id);

-- Segments deleted from the index whose files may still exist: a crash between the delete and
-- the unlink leaves a row here, and the next start unlinks the file.
CREATE TABLE garbage (
  segment_id INTEGER PRIMARY KEY,
  camera_id INTEGER NOT NULL
);

-- Users and sessions of the web UI and API.

CREATE TABLE users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  username TEXT NOT NULL UNIQUE,
  -- 'admin', 'evidence' or 'guard'.
  role TEXT NOT NULL CHECK (role IN ('admin', 'evidence', 'guard')),
  -- Argon2id PHC string.
  password_hash TEXT NOT NULL,
  created_90k INTEGER NOT NULL,
  disabled INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE sessions (
  -- SHA-256 of the random session id in the cookie; the id itself is never stored.
  id_sha256 BLOB PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  -- Sent back in X-CSRF-Token on every non-GET request.
  csrf_token TEXT NOT NULL,
  created_90k INTEGER NOT NULL,
  expires_90k INTEGER NOT NULL
);

CREATE INDEX sessions_user ON sessions (user_id);

-- Evidence: integrity from ingest time (per-stream hash chain of segments, signed chain
-- heads), the tamper-evident audit log, evidence holds and exports.

-- The hash chain of each stream's segments: chain = SHA-256("nvr/v1/chain" || prev_chain || id
-- || camera_id || start_90k || end_90k || frames || sha256), all integers as 8-byte big-endian,
-- for a main stream; a sub-stream's domain is "nvr/v1/chain/sub" instead. prev_chain is the
-- chain of the stream's previous sealed segment (32 zero bytes for its first). NULL while open.

-- Every Ed25519 key the recorder has signed chain heads and export manifests with, oldest
-- first. DATA_DIR/signing.key holds the private half of the current key (the one row with
-- retired_90k NULL); a retired key's private half is deleted when `nvr key rotate` replaces it,
-- only its public key is kept, to check what it signed. The key in signing.key when this table
-- was created (or found empty) is recorded with the data directory's creation time.
CREATE TABLE signing_keys (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  -- The raw 32-byte Ed25519 public key; its fingerprint is SHA-256 of these bytes.
  public_key BLOB NOT NULL UNIQUE CHECK (length(public_key) = 32),
  -- When the recorder started signing with it.
  first_used_90k INTEGER NOT NULL,
  -- When it was replaced (`nvr key rotate`); NULL for the current key.
  retired_90k INTEGER
);

-- At most one current key.
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys ((retired_90k IS NULL))
  WHERE retired_90k IS NULL;

-- Chain heads signed with the recorder's Ed25519 key (DATA_DIR/signing.key): periodically and at
-- every export. The signature covers "nvr/v1/chain-head" (a sub-stream's:
-- "nvr/v1/chain-head/sub") || camera_id || segment_id || chain_sha256 || signed_90k (integers
-- 8-byte big-endian).
CREATE TABLE chain_heads (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  camera_id INTEGER NOT NULL,
  -- The camera's stream whose chain this is (see `streams.stream`).
  stream INTEGER NOT NULL DEFAULT 0,
  -- The segment whose chain value is signed (it may since have been deleted by retention).
  segment_id INTEGER NOT NULL,
  chain_sha256 BLOB NOT NULL,
  signed_90k INTEGER NOT NULL,
  signature BLOB NOT NULL,
  -- The key that signed the head. NULL only for heads signed before migration 6, which the
  -- first key recorded in signing_keys signed (it is set to that key when it is recorded).
  signing_key_id INTEGER REFERENCES signing_keys (id)
);

CREATE INDEX chain_heads_stream_segment ON chain_heads (camera_id, stream, segment_id);

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
  finished_90k INTEGER,
  -- When the bundle file was deleted because it expired (exports keep plaintext copies of
  -- footage, so they do not outlive `evidence.export_keep_days`); NULL while it exists.
  deleted_90k INTEGER
);

-- Motion: an index that makes footage findable (it never decides what is recorded).

-- Each camera's motion analysis settings; a camera without a row uses the defaults (analysed,
-- default sensitivity, no mask).
CREATE TABLE motion_settings (
  camera_id INTEGER PRIMARY KEY REFERENCES cameras (id) ON DELETE CASCADE,
  -- 0 = do not analyse this camera (nothing new is indexed; the index kept is still searched).
  enabled INTEGER NOT NULL DEFAULT 1,
  -- 1 (least sensitive) ..= 10 (most); see nvr-motion's settings.
  sensitivity INTEGER NOT NULL CHECK (sensitivity BETWEEN 1 AND 10),
  -- Cells of the 16x16 grid to ignore: 32 bytes, row-major from the top left, bit c of the
  -- 2-byte little-endian row r = cell (r, c); NULL = none.
  mask BLOB
);

-- The motion index: what the analysis found in a stretch of one segment's footage. A segment
-- has one row per stretch it was analysed in without a break (usually one); deleting the
-- segment (retention, camera deletion, recovery) deletes its rows with it.
CREATE TABLE motion (
  id INTEGER PRIMARY KEY,
  camera_id INTEGER NOT NULL REFERENCES cameras (id),
  segment_id INTEGER NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
  -- The wall time analysed, 90 kHz since the Unix epoch; [start, end).
  start_90k INTEGER NOT NULL,
  end_90k INTEGER NOT NULL,
  -- Pictures analysed, and pictures not analysed because the analysis was behind.
  frames INTEGER NOT NULL,
  skipped INTEGER NOT NULL,
  -- The union of the cells with motion in the entries (32 bytes as in motion_settings.mask);
  -- NULL when no second had motion, so searches skip the row without reading `entries`.
  cells BLOB,
  -- The highest score of the entries (0 when none).
  peak INTEGER NOT NULL,
  -- Entries that are scene changes (the picture changed as a whole; not motion), which a
  -- search reports whatever the region.
  scene_changes INTEGER NOT NULL,
  -- The seconds with motion (see nvr-storage/src/motion/format.rs); last, so reading the
  -- columns before it never walks its pages.
  entries BLOB NOT NULL
);

CREATE INDEX motion_camera_start ON motion (camera_id, start_90k);
CREATE INDEX motion_segment ON motion (segment_id);
