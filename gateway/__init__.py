"""Calendar gateway: CalDAV/ICS/Google face of a booking business."""

__version__ = "0.1.0"
