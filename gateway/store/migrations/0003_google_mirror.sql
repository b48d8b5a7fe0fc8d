-- The Google mirror: each resource's connection to one Google calendar, the
-- invitations that start a connection, the links between bookings and Google
-- events, and the per-resource sync log. A page of Google changes commits in
-- one transaction with these rows and its sync token.

CREATE TABLE google_connections (
    resource_id     TEXT PRIMARY KEY NOT NULL,
    status          TEXT NOT NULL CHECK (status IN
                        ('not_invited', 'invited', 'importing', 'synced', 'warning', 'disabled')),
    account         TEXT NOT NULL DEFAULT '',
    calendar_id     TEXT NOT NULL DEFAULT '',
    calendar_name   TEXT NOT NULL DEFAULT '',
    -- Fernet-encrypted (google.token_keys): a copied database file alone does
    -- not give access to anybody's Google calendar.
    refresh_token   BLOB NOT NULL DEFAULT x'',
    sync_token      TEXT NOT NULL DEFAULT '',
    imported        INTEGER NOT NULL DEFAULT 0,
    warning         TEXT,
    warning_text    TEXT NOT NULL DEFAULT '',
    paused_until    TEXT,
    channel_id      TEXT,
    channel_token   TEXT,
    channel_resource TEXT,
    channel_expires TEXT,
    connected_at    TEXT,
    last_sync_at    TEXT
) WITHOUT ROWID;

-- One Google account serves one resource: connecting it elsewhere takes it over.
CREATE UNIQUE INDEX google_connections_account ON google_connections (account)
    WHERE account <> '' AND status IN ('importing', 'synced', 'warning');
CREATE UNIQUE INDEX google_connections_channel ON google_connections (channel_id)
    WHERE channel_id IS NOT NULL;

-- Only a SHA-256 of the invitation secret is kept; the link carries the secret.
CREATE TABLE google_invites (
    token_hash    TEXT PRIMARY KEY NOT NULL,
    resource_id   TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    state         TEXT NOT NULL DEFAULT '',
    code_verifier TEXT NOT NULL DEFAULT '',
    account       TEXT NOT NULL DEFAULT '',
    refresh_token BLOB NOT NULL DEFAULT x'',
    used_at       TEXT
) WITHOUT ROWID;

CREATE UNIQUE INDEX google_invites_state ON google_invites (state) WHERE state <> '';

CREATE TABLE google_events (
    resource_id    TEXT NOT NULL,
    event_id       TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('pushed', 'imported', 'series')),
    booking_id     TEXT NOT NULL DEFAULT '',
    etag           TEXT NOT NULL DEFAULT '',
    details        TEXT NOT NULL DEFAULT 'full' CHECK (details IN ('full', 'anonymous')),
    digest         TEXT NOT NULL DEFAULT '',
    series_id      TEXT NOT NULL DEFAULT '',
    expanded_until TEXT,
    PRIMARY KEY (resource_id, event_id)
) WITHOUT ROWID;

CREATE INDEX google_events_series ON google_events (resource_id, series_id)
    WHERE series_id <> '';
CREATE INDEX google_events_kind ON google_events (resource_id, kind);

CREATE TABLE sync_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    resource_id TEXT NOT NULL,
    at          TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('mirrored', 'imported', 'conflict', 'warning', 'info')),
    message     TEXT NOT NULL,
    booking_id  TEXT NOT NULL DEFAULT '',
    event_id    TEXT NOT NULL DEFAULT ''
);

CREATE INDEX sync_log_by_resource ON sync_log (resource_id, id);
