"""A fake of Google Calendar API v3 and Google's OAuth 2.0 endpoints on loopback.

The tests run the real google-api-python-client against it
(``fake_google.calendar.FakeGoogle``), and ``calgateway serve`` starts it in
demo mode (``demo.fake_google: true``, see ``gateway.demo``) so that the
Google connect flow can be clicked through without a Google account. It is
installed with the product for that demo only: nothing imports it unless
the setting is on, and it imports nothing of the gateway.
"""
