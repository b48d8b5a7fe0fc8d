"""Google Calendar mirror (the Google bridge issue fills this in)."""
