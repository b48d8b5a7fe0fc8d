"""HTTP plumbing shared by every front end (API, feeds, CalDAV): keys, auth, logs, metrics."""
