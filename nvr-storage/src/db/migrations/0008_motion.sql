-- Migration 8: the motion index (issue 14). Self-contained: it only adds tables, so it applies
-- the same on top of version 5, 6 or 7.

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
