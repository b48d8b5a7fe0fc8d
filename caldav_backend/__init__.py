"""CalDAV/WebDAV protocol over the booking core (the CalDAV issue fills this in)."""
