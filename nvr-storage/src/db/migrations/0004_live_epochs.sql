-- Migration 4: a shredded epoch is never used again. (camera_id, day) was UNIQUE over all
-- epochs, so a camera recording a day whose key retention had shredded already (a frame
-- received just before midnight, a clock stepped back) got the shredded row back, and a new key
-- under its id that retention would never shred. Now only live (not shredded) epochs are unique
-- per camera and day: such a day gets a new epoch and a new key.
--
-- SQLite cannot drop a table constraint, so the table is rebuilt as its documentation says
-- ("Making Other Kinds Of Table Schema Changes"): migrations run with foreign keys off and
-- check them before committing.
CREATE TABLE epochs_new (
  -- Also names the wrapped key file keys/<id>.key.
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  camera_id INTEGER NOT NULL REFERENCES cameras (id),
  -- UTC day 'YYYY-MM-DD' whose segments this key protects.
  day TEXT NOT NULL,
  -- 1 once the key file was deleted (every segment under it is gone for good). A shredded
  -- epoch is never used again: a new segment of its day gets a new epoch.
  shredded INTEGER NOT NULL DEFAULT 0
);
INSERT INTO epochs_new (id, camera_id, day, shredded)
  SELECT id, camera_id, day, shredded FROM epochs;
-- Epoch ids name key files and must never come back: keep the AUTOINCREMENT high-water mark,
-- which would otherwise leave with the dropped table (RENAME carries it over).
DELETE FROM sqlite_sequence WHERE name = 'epochs_new';
UPDATE sqlite_sequence SET name = 'epochs_new' WHERE name = 'epochs';
DROP TABLE epochs;
ALTER TABLE epochs_new RENAME TO epochs;
CREATE UNIQUE INDEX epochs_live_camera_day ON epochs (camera_id, day) WHERE shredded = 0;
