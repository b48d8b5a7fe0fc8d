// Copy buttons of the admin console (progressive enhancement): without this
// script the buttons stay hidden and the addresses are selectable text.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button.copy[data-copy]").forEach(function (button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) {
      return;
    }
    var label = button.textContent;
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(source.value).then(
        function () { button.textContent = "Copied"; },
        function () { source.select(); }
      ).finally(function () {
        setTimeout(function () { button.textContent = label; }, 2000);
      });
    });
  });
});
