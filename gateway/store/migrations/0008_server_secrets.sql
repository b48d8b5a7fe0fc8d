-- Secrets the server makes for itself and keeps (the key console session
-- cookies are signed with): created once, at the first use, so every
-- replica on the database signs with the same key and a restart signs
-- nobody out. Never shown, never logged.
CREATE TABLE server_secrets (
    name       TEXT PRIMARY KEY NOT NULL,
    secret     BLOB NOT NULL CHECK (length(secret) = 32),
    created_at TEXT NOT NULL
) WITHOUT ROWID;
