// Announces messages in the #toasts live region. The server sends them as an htmx event in the
// HX-Trigger header: {"toast": {"message": "...", "level": "error"}}. A failed htmx request that
// brought no message, or never reached the server, gets the region's translated fallback text.
(function () {
  "use strict";
  var MAX_SHOWN = 3;

  function region() {
    return document.getElementById("toasts");
  }

  function show(message, level) {
    var box = region();
    if (!box || !message) return;
    var toast = document.createElement("div");
    toast.className = "toast toast-" + (level === "error" ? "error" : "info");
    if (level === "error") toast.setAttribute("role", "alert");
    var text = document.createElement("p");
    text.textContent = message;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "toast-close";
    close.textContent = box.dataset.dismiss || "Dismiss";
    close.addEventListener("click", function () {
      toast.remove();
    });
    toast.appendChild(text);
    toast.appendChild(close);
    box.appendChild(toast);
    while (box.children.length > MAX_SHOWN) box.firstElementChild.remove();
  }

  document.addEventListener("toast", function (event) {
    var detail = event.detail || {};
    show(detail.message, detail.level);
  });

  // A 4xx/5xx with HX-Trigger has shown its own toast; one without gets the generic message.
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail && event.detail.xhr;
    if (xhr && !xhr.getResponseHeader("HX-Trigger")) show(region() && region().dataset.fallback, "error");
  });

  document.addEventListener("htmx:sendError", function () {
    show(region() && region().dataset.offline, "error");
  });
})();
