"""The HTTP front ends beside CalDAV: the JSON API (``api``), the ICS feeds
(``feeds``), the pages bookers open from their invitations (``rsvp``) and the
admin console (``console``). Each is an aiohttp sub-application that
``gateway.app`` mounts; they reach the store and the services through the
AppKeys of ``gateway.web.keys`` only.
"""
