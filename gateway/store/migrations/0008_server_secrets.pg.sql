-- PostgreSQL form of 0008_server_secrets.sql (secrets the server makes for
-- itself and keeps, shared by every replica).
CREATE TABLE server_secrets (
    name       TEXT COLLATE "C" PRIMARY KEY,
    secret     BYTEA NOT NULL CHECK (octet_length(secret) = 32),
    created_at TEXT COLLATE "C" NOT NULL
);
