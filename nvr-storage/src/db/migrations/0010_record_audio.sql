-- Migration 10: audio recording per camera, off until an admin switches it on (recording
-- sound needs a stated justification in the UK): existing cameras keep recording no sound.

-- 1 = record the main stream's audio (AAC, G.711) beside its video.
ALTER TABLE cameras ADD COLUMN record_audio INTEGER NOT NULL DEFAULT 0;
