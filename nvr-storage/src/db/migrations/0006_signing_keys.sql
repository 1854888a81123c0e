-- Migration 6: every signing key the recorder has used, so chain heads signed before a key
-- rotation still verify, and the status page can list the keys with their dates.

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

-- The key that signed the head. NULL only for heads signed before this column existed, which
-- the first key recorded in signing_keys signed (it is set to that key when it is recorded).
ALTER TABLE chain_heads ADD COLUMN signing_key_id INTEGER REFERENCES signing_keys (id);
