"""What each settings key means: the Meaning column of config/README.md's
key tables (``gateway.settings.docs`` writes them), kept here in one place.

Kept apart from the models because many meanings run to several sentences,
which would bury the models' rules. Texts are Markdown as a table cell holds
it (a literal ``|`` is written ``\\|``). Keys are paths as the README writes
them: ``server.port``, ``resources[].google.direction``, ``mail`` for a
top-level key.
"""

from __future__ import annotations

from typing import Final

MEANINGS: Final[dict[str, str]] = {
    "server": "HTTP listener",
    "storage": "where data is kept",
    "defaults": "values resources inherit",
    "users": "people who log in with a password (HTTP Basic)",
    "api_tokens": "programs that call the API with a bearer token",
    "resources": "bookable resources, one calendar each",
    "mail": "outgoing e-mail (SMTP), see [mail](#mail)",
    "google": "the Google Calendar mirror, see [google](#google)",
    "outbox": "the queue of side effects (Google writes, e-mails) and its retries",
    "invitations": "how bookers are invited; the key that signs their links",
    "limits": "what one calendar object may make the server do (recurrence rules, overrides)",
    "auth": "password-guessing backoff and the queue of password checks",
    "server.host": (
        "address to listen on; `0.0.0.0` for all IPv4 interfaces (containers, remote proxies), "
        "`::` for IPv6"
    ),
    "server.port": "TCP port; `0` picks a free port (tests)",
    "server.base_url": (
        "public address clients use: `http://` or `https://` with a host, no query; a trailing `/` "
        "is dropped; an empty string means null. Used in feed and CalDAV links and iCalendar UIDs. "
        "Without it the gateway uses `http://{host}:{port}`; set it behind a reverse proxy, with "
        "TLS, or when `host` is `0.0.0.0`"
    ),
    "server.max_body_bytes": (
        "largest request body; larger requests get HTTP 413 and the connection is closed. A "
        "`Content-Length` above it is refused before a byte of the body is read, on every route "
        "but the import"
    ),
    "server.max_import_bytes": (
        "largest calendar file `POST /api/v1/resources/{id}/import` takes (a whole export); beyond "
        "it HTTP 413 naming this key"
    ),
    "server.log_format": (
        "`json`: one JSON object per line on stderr (log shippers); `text`: for humans"
    ),
    "server.shutdown_timeout": (
        "seconds running requests may take to finish after SIGTERM/SIGINT, or on the old "
        "configuration after a reload (SIGHUP); then, as long again, for the e-mails and Google "
        "writes in flight (one cut off half-way could only be done again)"
    ),
    "server.head_timeout": (
        "seconds a client has to send a request's line and headers, counted from the connection's "
        "start, or on a kept-alive connection from the first byte of its next request (the wait "
        "before that byte is `keepalive_timeout`'s); past it the connection gets 408 and is "
        "closed, or is just closed if nothing came (slowloris). A new connection is also closed "
        "after `keepalive_timeout` without a whole request, whichever comes first"
    ),
    "server.body_timeout": (
        "seconds a client has to send a whole request body, counted from the end of its headers (a "
        "lying `Content-Length`, a chunked body that never ends); past it 408 and the connection "
        "is closed"
    ),
    "server.keepalive_timeout": (
        "seconds an idle keep-alive connection is kept open between requests"
    ),
    "server.max_connections": (
        "connections open at once. At the cap a new connection takes the place of the one idle the "
        "longest (no request in progress; it is closed, with 408 if it had sent part of a "
        "request), so idle sockets cannot lock clients out; only when every connection is working "
        "is the new one refused with a short 503. The server raises its open-file limit (soft to "
        "hard) at start where allowed; where the limit cannot hold this many connections beside "
        "256 descriptors kept for the database, mail, Google and accepting, the cap is lowered, "
        "with one log line (`max_connections lowered to fit the open-file limit`)"
    ),
    "server.max_connections_per_address": (
        "connections open at once from one client address; beyond it a new one gets a short 503 "
        "and is closed. `0` means no cap (behind a reverse proxy every connection comes from the "
        "proxy: cap there)"
    ),
    "server.trusted_proxies": (
        "reverse proxies whose `X-Forwarded-For` is believed (like `[127.0.0.1]` or "
        "`[10.0.0.0/8]`); the client is then the rightmost address in it that is not one of them. "
        "Password backoff and the access log count that client; connection caps count the proxy's "
        "connections. Never list addresses clients connect from directly"
    ),
    "server.heavy_requests": (
        "heavy requests worked on at once: PROPFIND of a calendar with Depth 1, every CalDAV "
        "REPORT (calendar-query, calendar-multiget, free-busy-query, sync-collection), and "
        "rendering a feed that changed (a cached feed or a 304 is light). `/healthz`, the booking "
        "API, OPTIONS, PROPFIND Depth 0 and single objects never wait for them. Counted in "
        "`/metrics` as `calgateway_heavy_requests_total{outcome}`"
    ),
    "server.heavy_queue": (
        "heavy requests that may wait for a turn; beyond it they get 503 with `Retry-After`"
    ),
    "server.heavy_queue_timeout": (
        "seconds a heavy request waits for its turn at most; then it too gets 503 with "
        "`Retry-After`"
    ),
    "server.metrics": (
        "who may read `/metrics`: nobody (404), a scraper sending `Authorization: Bearer "
        "<metrics_token>`, or anyone"
    ),
    "server.metrics_token": (
        "the bearer token for `metrics: token` (22+ characters; `calgateway new-token` makes one)"
    ),
    "storage.url": "database location, SQLAlchemy style",
    "storage.password_env": (
        "PostgreSQL only: the name of the environment variable holding the password"
    ),
    "storage.password_file": (
        "PostgreSQL only: a file holding the password (relative to the settings file; a trailing "
        "newline is ignored)"
    ),
    "defaults.timezone": "timezone of every resource that does not set its own",
    "users[].name": "login name: 1-64 characters of `A-Z a-z 0-9 . _ @ -`; unique among users",
    "users[].password_hash": (
        "argon2 hash (`$argon2id$...`) or bcrypt hash (`$2b$`, `$2a$`, `$2y$`, e.g. from `htpasswd "
        "-B`); never the password itself. Make one with `calgateway hash-password`"
    ),
    "users[].access": (
        "grants: resource id (or `*`) → `read` or `read-write` (see [access](#access-grants))"
    ),
    "api_tokens[].name": (
        "label in logs; 1-64 characters of `A-Z a-z 0-9 . _ @ -`; unique among API tokens"
    ),
    "api_tokens[].token": (
        "at least 22 characters of `A-Z a-z 0-9 _ -` (128 random bits); make one with `calgateway "
        "new-token`. Unique across all API and feed tokens"
    ),
    "api_tokens[].access": "grants, as for users",
    "resources[].id": (
        "1-63 characters of `a-z 0-9 _ -`, starting with a letter or digit; unique. Appears in "
        "URLs (`/dav/calendars/{id}/`, `/feeds/{id}.ics`) and in the database: do not rename a "
        "resource that has bookings"
    ),
    "resources[].name": "display name (calendar name, e-mails); not empty",
    "resources[].email": "the resource's address, organizer of its bookings: one `@`, no spaces",
    "resources[].timezone": "timezone bookings are shown in unless they name their own",
    "resources[].feed_tokens": (
        "tokens of the ICS feed `/feeds/{id}.ics?token=...`; same rules as API tokens, unique "
        "across all tokens. Every listed token is accepted; an empty list means the resource has "
        "no feed"
    ),
    "resources[].google": "this resource's Google mirror mode, see [below](#resourcesgoogle)",
    "resources[].invitations": (
        "`{via: email \\| google \\| google_import}`: how this resource's bookers are invited, see "
        "[invitations](#invitations)"
    ),
    "resources[].google.direction": (
        "which way this resource's calendar is mirrored (see [directions](#directions-and-details))"
    ),
    "resources[].google.details": "what this resource's bookings show in Google",
    "resources[].google.when_stale": (
        "what a booking of this resource does when its busy time from Google cannot be brought up "
        "to date in time (see [a fresh look at Google](#a-fresh-look-at-google-before-a-booking))"
    ),
    "mail.smtp_host": "SMTP server (your provider's submission host, or a local relay)",
    "mail.smtp_port": "its port: usually 587 with `starttls`, 465 with `tls`, 25 with `none`",
    "mail.security": (
        "`starttls`: plain connection upgraded with STARTTLS; `tls`: TLS from the first byte "
        '("SMTPS"); `none`: no encryption, only for a relay on the same machine or network'
    ),
    "mail.username": "SMTP login; set together with `password` or not at all",
    "mail.password": 'SMTP password; set together with `username`. Prefer `"${SMTP_PASSWORD}"`',
    "mail.from_address": (
        "the gateway's own address: sender of every message, organizer of invitations, where "
        "answers (RSVP) go. Your SMTP server must allow sending as it"
    ),
    "mail.from_name": "display name of the sender",
    "mail.timeout": (
        "seconds to wait for the SMTP server to connect and to answer each command (the end of a "
        "message's data has `data_timeout`) before the attempt counts as failed (and is retried)"
    ),
    "mail.data_timeout": (
        "seconds to wait for the server's acknowledgement of a message's end (RFC 5321 4.5.3.2.6 "
        "allows 10 minutes); a slow acknowledgement past `timeout` must not count as a failure, or "
        "the booker gets the message twice"
    ),
    "mail.imap": "the mailbox of `from_address`, polled for bookers' answers, see below",
    "mail.imap.host": "IMAP server",
    "mail.imap.port": "its port: 993 with `tls`, 143 with `starttls`",
    "mail.imap.security": "as for SMTP; certificates are verified",
    "mail.imap.username": "IMAP login",
    "mail.imap.password": 'IMAP password; prefer `"${CALGATEWAY_IMAP_PASSWORD}"`',
    "mail.imap.folder": "where answers arrive",
    "mail.imap.processed_folder": "move handled messages here instead of only marking them seen",
    "mail.imap.poll_interval": "seconds between polls (the first one interval after start)",
    "mail.imap.timeout": "seconds before an IMAP connection attempt fails",
    "google.client_id": (
        "OAuth client id from the Google Cloud console (`….apps.googleusercontent.com`), see "
        "[below](#creating-the-oauth-client)"
    ),
    "google.client_secret": 'that client\'s secret. Prefer `"${GOOGLE_CLIENT_SECRET}"`',
    "google.token_keys": (
        "keys that encrypt Google refresh tokens in the database; the first encrypts, all decrypt. "
        "Make one with `calgateway google new-key`; see [token keys](#token-keys)"
    ),
    "google.direction": (
        "default mirror direction of every resource (see [directions](#directions-and-details)); a "
        "resource may override it"
    ),
    "google.details": "default of what bookings show in Google; a resource may override it",
    "google.api_endpoint": (
        "Calendar API base URL, service path included (google-api-python-client's `api_endpoint` "
        "replaces the discovery document's root URL and service path). Change only for a "
        "Google-compatible service or a test double"
    ),
    "google.auth_uri": "OAuth consent page. Same remark",
    "google.token_uri": "OAuth token endpoint. Same remark",
    "google.push_notifications": (
        "ask Google to announce changes (Calendar API watch channels) at "
        "`{base_url}/google/notify`, so changes made in Google arrive within seconds. **Needs a "
        "public `https://` `server.base_url`** with a valid certificate; set `false` otherwise "
        "(see [push notifications](#push-notifications))"
    ),
    "google.poll_interval": (
        "seconds between routine syncs of each connected calendar. Runs also with push "
        "notifications, because Google may drop them"
    ),
    "google.channel_ttl": (
        "seconds a watch channel is asked to live; Google caps it (a week for events)"
    ),
    "google.channel_renew_before": (
        "open a new channel when the current one has less than this many seconds left"
    ),
    "google.import_past_days": (
        "how far back the mirror looks: on connecting, bookings from this many days ago onward are "
        "written to Google; Google events before then are not imported; recurring Google events "
        "are expanded from then"
    ),
    "google.import_horizon_days": (
        "how far ahead occurrences of recurring Google events become busy blocks (an endless "
        "series has no last occurrence)"
    ),
    "google.invite_ttl_hours": "how long an invitation link works; it works once",
    "google.quota_pause": (
        "seconds to leave a resource alone after Google reports the daily quota used up (status "
        '"warning: quota exceeded")'
    ),
    "google.request_timeout": "seconds one call to Google may take",
    "google.retry": (
        "retries of one call to Google that failed for a passing reason (rate limit 429/403, 5xx, "
        "network)"
    ),
    "google.freshness_seconds": (
        "a booking (API create or reschedule, CalDAV PUT of a new or moved event) of a resource "
        "that imports from Google waits for a sync of its calendar when the last successful sync "
        "is older than this; `0` never checks (see "
        "[below](#a-fresh-look-at-google-before-a-booking))"
    ),
    "google.freshness_deadline": "seconds such a booking waits for that sync at most",
    "google.when_stale": (
        "when the sync cannot finish in time (deadline passed, Google unavailable, quota, "
        "reconnect needed): `accept` books anyway and logs the risk; `refuse` answers 503 with "
        "`Retry-After`. A resource may override it"
    ),
    "google.retry.attempts": "tries in all, the first included",
    "google.retry.initial_delay": (
        "seconds before the first retry; doubles with each retry, with random jitter"
    ),
    "google.retry.max_delay": "longest wait between two tries",
    "invitations.link_key": (
        "signs the accept/decline links and the `.ics` download links in e-mails and API answers "
        "(HMAC-SHA256). Without it those links are left out. Changing it invalidates the links "
        'already sent. Make one with `calgateway new-token`; prefer `"${CALGATEWAY_LINK_KEY}"`'
    ),
    "invitations.via": (
        "how bookers are invited, unless a resource says otherwise (`resources[].invitations.via`)"
    ),
    "outbox.poll_interval": (
        "seconds between looks for due items. Changes made by this server wake the worker at once; "
        "items queued by another process (the `calgateway google` commands) wait for the next look"
    ),
    "outbox.initial_retry_delay": (
        "wait before the first retry of a failed item: between half of this and this many seconds "
        "(random, so items that failed together do not come back together); doubles with each "
        "failure"
    ),
    "outbox.max_retry_delay": "longest wait between two retries",
    "outbox.batch_size": "items taken from the queue at a time",
    "limits.max_instances": (
        "instances of one object one query may expand (more in the range asked for: that object "
        "answers 507, never a shortened list); a series with `COUNT` above it, or a bounded series "
        "(COUNT/UNTIL) with more instances, is refused"
    ),
    "limits.max_sub_daily_occurrences": (
        "a rule more frequent than daily (`FREQ=SECONDLY`, `MINUTELY`, `HOURLY`) is refused unless "
        "COUNT or UNTIL bound it to at most this many occurrences; with UNTIL every FREQ x "
        "INTERVAL step from DTSTART to UNTIL counts, times the BYSECOND/BYMINUTE values that "
        "multiply each step; `0` refuses every sub-daily rule"
    ),
    "limits.max_overrides": "overridden instances (components with `RECURRENCE-ID`) in one object",
    "limits.max_expansion_steps": (
        "candidates one expansion of one object may walk (every step of a rule, kept or not)"
    ),
    "limits.expansion_seconds": "seconds one object's expansion may take in one request",
    "auth.max_failures_per_address": (
        "wrong passwords from one address within `failure_window` before it is locked out"
    ),
    "auth.max_failures_per_user": (
        "wrong passwords for one user name within `failure_window` before the name is locked out "
        "for new sign-ins (clients already verified keep working)"
    ),
    "auth.failure_window": "seconds over which failures are counted",
    "auth.lockout_seconds": (
        "length of the first lockout; each further one in the same streak lasts twice as long (a "
        "streak ends after `failure_window` seconds without a wrong password or a lockout)"
    ),
    "auth.max_lockout_seconds": "longest lockout",
    "auth.check_queue": (
        "password checks that may wait for a turn (at most two run at once, one per client "
        "address); when it is full, 429 with `Retry-After` to an address that already holds "
        "places, 503 with `Retry-After` to others"
    ),
    "branding": "the look of the pages bookers and resource owners open",
    "demo": "a demo installation (the fake Google Calendar); never in production",
    "defaults.language": (
        "language (`en` or `de`) of every resource's booker pages and invitation mails, unless the "
        "resource sets its own"
    ),
    "defaults.implicit_scheduling": (
        "calendar apps' bookings invite their attendees: when a CalDAV client writes or deletes "
        "an event whose `ORGANIZER` is the resource's address (or `mail.from_address`), each "
        "`ATTENDEE` gets the invitation, update or cancellation by e-mail, as for API bookings "
        "(RFC 6638 implicit scheduling). An attendee marked `SCHEDULE-AGENT=CLIENT` or `NONE` is "
        "left to the app. Needs `mail`"
    ),
    "resources[].implicit_scheduling": (
        "the same for this resource's calendar (`true` or `false`)"
    ),
    "defaults.accept_invitations": (
        "book a resource by inviting it: when a CalDAV client writes an event into a calendar "
        "it may write that names a resource's address as `ATTENDEE` (`CUTYPE` `ROOM`, "
        "`INDIVIDUAL` or none), the resource books it in its own calendar if that time is free "
        "and answers `ACCEPTED`, else `DECLINED` with the busy time; the answer is written into "
        "the organizer's event (`PARTSTAT`, `SCHEDULE-STATUS`) and mailed as an iMIP `REPLY` to "
        "an organizer outside the gateway. Moving the event moves the booking; cancelling or "
        "deleting it, or taking the resource off, frees it. Recurring events are declined. "
        "Off: the address is an ordinary attendee"
    ),
    "resources[].accept_invitations": "the same for this resource (`true` or `false`)",
    "users[].admin": "may sign in to the admin console at `/` (every resource, every action)",
    "resources[].language": (
        "language of this resource's booker pages and invitation mails (`en` or `de`)"
    ),
    "resources[].invitations.via": (
        "how this resource's bookers are invited, see [invitations](#invitations)"
    ),
    "branding.name": (
        "the business's name, beside the logo at the top of every page and in its title"
    ),
    "branding.logo_url": (
        "an image shown before the name (a small PNG or SVG); the pages' Content-Security-Policy "
        "allows images from its origin"
    ),
    "branding.accent_color": (
        "colour of buttons and links, `#` and six hex digits; the text on buttons is white or "
        "black, whichever reads better, and links fall back to the text colour when the accent is "
        "too light to read on white"
    ),
    "demo.fake_google": (
        "start the project's fake Google Calendar on 127.0.0.1 with the server, so the Google "
        "connect flow can be clicked through without a Google account; needs `server.host` on "
        "loopback and the google section's `api_endpoint`, `auth_uri` and `token_uri` pointing at "
        "the fake"
    ),
}

# Said after the default, e.g. a byte count in MiB, or what leaving a section
# out means ("absent: no e-mail").
DEFAULT_NOTES: Final[dict[str, str]] = {
    "server.max_body_bytes": "(1 MiB)",
    "server.max_import_bytes": "(32 MiB)",
    "google.channel_ttl": "(7 days)",
    "google.channel_renew_before": "(1 day)",
    "mail": "no e-mail",
    "google": "no Google mirror",
    "resources[].google": "the [google](#google) section's `direction` and `details`",
    "resources[].invitations": "`invitations.via`",
}

# Keys that, left out, take another key's value (the models say None, or, for
# a resource's timezone, have it filled in before validation).
INHERITS: Final[dict[str, str]] = {
    "resources[].timezone": "defaults.timezone",
    "resources[].language": "defaults.language",
    "resources[].implicit_scheduling": "defaults.implicit_scheduling",
    "resources[].accept_invitations": "defaults.accept_invitations",
    "resources[].google.direction": "google.direction",
    "resources[].google.details": "google.details",
    "resources[].google.when_stale": "google.when_stale",
    "resources[].invitations.via": "invitations.via",
}
