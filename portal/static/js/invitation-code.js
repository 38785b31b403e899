// The invitation page: the email's link carries the code after "#", which a browser never sends to a
// server (so no log or Referer holds it). Copy it into the code field, then drop it from the address
// bar and the history. Without JavaScript the invitee types the code the email also shows.
(function () {
  "use strict";
  var code = decodeURIComponent(window.location.hash.slice(1));
  var field = document.getElementById("code");
  if (!code || !field) {
    return;
  }
  if (!field.value) {
    field.value = code;
  }
  window.history.replaceState(null, "", window.location.pathname + window.location.search);
})();
