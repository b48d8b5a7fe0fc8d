// Adds the booking's time in the browser's own time zone under the time the
// page shows (the resource's zone and UTC), when the two zones differ. The
// page reads well without it (gateway/front/rsvp.py). No inline script: the
// Content-Security-Policy allows only files like this one (script-src 'self').
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var lang = document.documentElement.lang || undefined;
  var zone;
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
  document.querySelectorAll("time[data-end]").forEach(function (time) {
    var out = time.parentNode.querySelector(".local-time");
    var start = new Date(time.getAttribute("datetime"));
    var end = new Date(time.getAttribute("data-end"));
    if (!out || !zone || zone === time.getAttribute("data-zone") || isNaN(start) || isNaN(end)) return;
    var day = new Intl.DateTimeFormat(lang, { weekday: "long", day: "numeric", month: "long", year: "numeric" });
    var hour = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    var text = day.format(start) + ", " + hour.format(start) + "\u2013" + hour.format(end);
    if (day.format(start) !== day.format(end)) text = day.format(start) + ", " + hour.format(start) + " \u2013 " + day.format(end) + ", " + hour.format(end);
    out.textContent = out.getAttribute("data-label") + " (" + zone + "): " + text;
    out.hidden = false;
  });
});
