-- Migration 7: two streams per camera, a main stream and an optional low-resolution
-- sub-stream, each recorded with its own runs, segments, hash chain and retention. (Number 6
-- is another change's; migrations are applied in order of their numbers, so a database of
-- version 5 comes straight here.)
--
-- What was per camera and is now per stream moves from `cameras` to `streams`: the URL, the
-- retention overrides and the chain head. Every existing camera gets its main stream (0) with
-- its values; its segments and signed chain heads are main-stream ones.
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
  PRIMARY KEY (camera_id, stream)
);
INSERT INTO streams (camera_id, stream, url, record, retain_max_bytes, retain_max_age_secs,
                     chain_segment_id, chain_sha256)
  SELECT id, 0, url, 1, retain_max_bytes, retain_max_age_secs, chain_segment_id, chain_sha256
  FROM cameras;
ALTER TABLE cameras DROP COLUMN url;
ALTER TABLE cameras DROP COLUMN retain_max_bytes;
ALTER TABLE cameras DROP COLUMN retain_max_age_secs;
ALTER TABLE cameras DROP COLUMN chain_segment_id;
ALTER TABLE cameras DROP COLUMN chain_sha256;

-- The stream a segment belongs to (see `streams.stream`). Segment files stay where they were,
-- segments/<camera id>/<segment id>.seg, whatever their stream: segment ids are unique across
-- streams, and the row says which stream a file is.
ALTER TABLE segments ADD COLUMN stream INTEGER NOT NULL DEFAULT 0;
DROP INDEX segments_camera_start;
CREATE INDEX segments_stream_start ON segments (camera_id, stream, start_90k);

-- The stream whose chain head is signed.
ALTER TABLE chain_heads ADD COLUMN stream INTEGER NOT NULL DEFAULT 0;
DROP INDEX chain_heads_camera_segment;
CREATE INDEX chain_heads_stream_segment ON chain_heads (camera_id, stream, segment_id);
