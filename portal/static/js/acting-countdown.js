// The acting banner's countdown (templates/console/_acting_status.html): the server renders the
// minutes left; this only keeps the number current between pages. Without it nothing is lost.
(function () {
  "use strict";
  function tick() {
    var counter = document.getElementById("acting-countdown");
    if (!counter || !counter.dataset.until) return;
    var left = Math.ceil((Date.parse(counter.dataset.until) - Date.now()) / 60000);
    if (left <= 0) counter.textContent = counter.dataset.over;
    else if (left === 1) counter.textContent = counter.dataset.one;
    else counter.textContent = counter.dataset.many.replace("{n}", String(left));
  }
  document.addEventListener("DOMContentLoaded", tick);
  document.addEventListener("htmx:afterSettle", tick);
  setInterval(tick, 15000);
})();
