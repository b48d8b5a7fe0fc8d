"""The links the gateway hands to bookers, in mails, API answers and pages:
signed tokens for answering and downloading (``tokens``), the signer that
turns a booking into its URLs (``signer``), and the "add to calendar" links
of Google, Outlook.com, Office 365 and Yahoo (``add_to_calendar``).

Pure and offline: nothing here sends, stores or renders.
"""
