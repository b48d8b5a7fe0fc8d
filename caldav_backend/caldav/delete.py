"""DELETE of a calendar object (with If-Match); calendars themselves come
from the config file and are not deleted over CalDAV."""

from __future__ import annotations

from aiohttp import web

from caldav_backend.dav.conditions import precondition_from
from caldav_backend.dav.errors import DavError
from gateway.core.errors import ImportedObject, NotFound, PreconditionFailed

from .names import gw
from .tree import DavContext, Target


async def delete(request: web.Request, ctx: DavContext, target: Target) -> web.Response:
    if target.kind == "calendar":
        raise DavError(
            403, "calendars come from the gateway's config file; remove the resource there"
        )
    if target.kind != "object" or target.resource is None or target.name is None:
        raise DavError(405, "only calendar objects can be deleted")
    resource = target.resource
    ctx.require_write(resource.id)
    try:
        await ctx.bookings.delete_object(
            resource.id, target.name, precondition_from(request.headers)
        )
    except NotFound:
        raise DavError(404, f"no calendar object {target.name!r} in {resource.id!r}") from None
    except PreconditionFailed as error:
        raise DavError(412, error.message) from None
    except ImportedObject as error:
        raise DavError(403, str(error), gw("imported-from-google")) from None
    return web.Response(status=204)
