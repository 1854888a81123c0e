-- Migration 2: users and sessions of the web UI and API.

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
