"""CalDAV/WebDAV over the booking store (RFC 4918, 4791, 6578, 5397).

``dav`` is generic WebDAV (XML, properties, PROPFIND, PROPPATCH, multistatus,
sync-collection) and never imports ``caldav``; ``caldav`` is the calendar
side (the resource tree, objects, reports); ``app`` mounts both on aiohttp.
"""

from caldav_backend.app import create_dav_app, server_root_to_dav, well_known_caldav
from caldav_backend.caldav.names import DAV_ROOT

__all__ = ["DAV_ROOT", "create_dav_app", "server_root_to_dav", "well_known_caldav"]
