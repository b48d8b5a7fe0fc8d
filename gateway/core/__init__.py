"""Domain core: bookings, resources, the booking service and the ports it needs.

Imports no I/O or format library (checked by import-linter): adapters in
``gateway.store``, ``gateway.ical`` and ``gateway.mail`` implement the ports.
"""
