-- Migration 1: cameras, video parameters, epochs, segments and the garbage list.

CREATE TABLE meta (
  -- Exactly one row.
  id INTEGER PRIMARY KEY CHECK (id = 1),
  -- Random id of this data directory; a segment file names its camera and segment, and the
  -- epoch keys are bound to this directory's master key, so files from another data directory
  -- fail authentication.
  data_dir_uuid BLOB NOT NULL,
  -- When `nvr init` ran, 90 kHz since the Unix epoch.
  created_90k INTEGER NOT NULL
);

CREATE TABLE cameras (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  -- Short unique name shown in the UI and used by the CLI.
  name TEXT NOT NULL UNIQUE,
  -- rtsp:// URL without credentials.
  url TEXT NOT NULL,
  -- RTSP username, or NULL.
  username TEXT,
  -- RTSP password sealed with AES-256-GCM under a key derived from the master key
  -- (nonce || ciphertext || tag), or NULL. Never returned by the API, never logged.
  password_sealed BLOB,
  -- 0 = do not record.
  enabled INTEGER NOT NULL DEFAULT 1,
  -- Per-camera retention overrides; NULL means the server default.
  retain_max_bytes INTEGER,
  retain_max_age_secs INTEGER,
  created_90k INTEGER NOT NULL
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
  -- 1 once the key file was deleted (every segment under it is gone for good).
  shredded INTEGER NOT NULL DEFAULT 0,
  UNIQUE (camera_id, day)
);

CREATE TABLE segments (
  -- Never reused (AUTOINCREMENT), because it is part of the segment key derivation.
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  camera_id INTEGER NOT NULL REFERENCES cameras (id),
  -- Id of the first segment of the run this one belongs to; a run is uninterrupted recording.
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
  flags INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX segments_camera_start ON segments (camera_id, start_90k);
CREATE INDEX segments_epoch ON segments (epoch_id);

-- Segments deleted from the index whose files may still exist: a crash between the delete and
-- the unlink leaves a row here, and the next start unlinks the file.
CREATE TABLE garbage (
  segment_id INTEGER PRIMARY KEY,
  camera_id INTEGER NOT NULL
);
