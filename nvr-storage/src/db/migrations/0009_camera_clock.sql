-- Migration 9: each stream's latest observed camera clock offset, from the camera's RTCP
-- sender reports, so an export can state how far the camera's clock was from the recorder's.

-- Camera time minus recorder time, 90 kHz (positive: the camera is ahead), and when it was
-- measured (recorder time, 90 kHz since the Unix epoch); NULL until a report arrived.
ALTER TABLE streams ADD COLUMN clock_offset_90k INTEGER;
ALTER TABLE streams ADD COLUMN clock_measured_90k INTEGER;
