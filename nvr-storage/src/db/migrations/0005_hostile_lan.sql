-- Migration 5: what a hostile LAN needs bounded.

-- The first-run setup code (sealed under the master key with AES-256-GCM), while no account
-- exists and the server listens beyond loopback: `nvr init` and `nvr serve` print it on the
-- console, and POST /api/setup must present it. Cleared when the first account is created.
ALTER TABLE meta ADD COLUMN setup_code_sealed BLOB;

-- When an export's bundle file was deleted because it expired (exports keep plaintext copies of
-- footage, so they do not outlive `evidence.export_keep_days`); NULL while it exists.
ALTER TABLE exports ADD COLUMN deleted_90k INTEGER;
