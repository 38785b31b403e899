// Passkeys (WebAuthn) on the sign-in and security pages, as an enhancement: where the browser has
// WebAuthn, the elements marked data-passkey-supported appear and those marked
// data-passkey-unsupported go. A form marked data-passkey-register or data-passkey-sign-in then runs
// the ceremony: POST (JSON) to its data-options-url for the server's options, ask the authenticator,
// POST the answer to the form's action, and follow the "redirect" the server sends back. Messages come
// translated from the form's data-working, data-cancelled and data-failed attributes, or the server.
(function () {
  "use strict";
  if (!window.PublicKeyCredential || !navigator.credentials) return;

  function toBytes(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    var binary = atob(base64 + "===".slice((base64.length + 3) % 4));
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  function toText(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function withIds(descriptors) {
    return (descriptors || []).map(function (descriptor) {
      return Object.assign({}, descriptor, { id: toBytes(descriptor.id) });
    });
  }

  // The CSRF header htmx sends (base.html puts it on <body>), else the form's hidden token.
  function csrfHeaders(form) {
    try {
      var headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
      if (headers["x-csrftoken"]) return headers;
    } catch (ignored) {
      // fall through to the form's token
    }
    var input = form.querySelector("input[name='_csrf_token']");
    return input ? { "x-csrftoken": input.value } : {};
  }

  function postJSON(form, url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: Object.assign({ "Content-Type": "application/json", Accept: "application/json" }, csrfHeaders(form)),
      body: JSON.stringify(body),
    }).then(function (response) {
      return response
        .json()
        .catch(function () {
          return {};
        })
        .then(function (json) {
          if (!response.ok) throw { answer: json };
          return json;
        });
    });
  }

  var register = {
    ask: function (options) {
      var publicKey = Object.assign({}, options, {
        challenge: toBytes(options.challenge),
        user: Object.assign({}, options.user, { id: toBytes(options.user.id) }),
        excludeCredentials: withIds(options.excludeCredentials),
      });
      return navigator.credentials.create({ publicKey: publicKey });
    },
    answer: function (credential, form) {
      var response = credential.response;
      var name = form.querySelector("input[name='passkey_name']");
      return {
        name: name ? name.value : "",
        credential: {
          id: credential.id,
          rawId: toText(credential.rawId),
          type: credential.type,
          authenticatorAttachment: credential.authenticatorAttachment || null,
          clientExtensionResults: credential.getClientExtensionResults(),
          response: {
            clientDataJSON: toText(response.clientDataJSON),
            attestationObject: toText(response.attestationObject),
            transports: response.getTransports ? response.getTransports() : [],
          },
        },
      };
    },
  };

  var signIn = {
    ask: function (options) {
      var publicKey = Object.assign({}, options, {
        challenge: toBytes(options.challenge),
        allowCredentials: withIds(options.allowCredentials),
      });
      return navigator.credentials.get({ publicKey: publicKey });
    },
    answer: function (credential) {
      var response = credential.response;
      return {
        credential: {
          id: credential.id,
          rawId: toText(credential.rawId),
          type: credential.type,
          authenticatorAttachment: credential.authenticatorAttachment || null,
          clientExtensionResults: credential.getClientExtensionResults(),
          response: {
            clientDataJSON: toText(response.clientDataJSON),
            authenticatorData: toText(response.authenticatorData),
            signature: toText(response.signature),
            userHandle: response.userHandle ? toText(response.userHandle) : null,
          },
        },
      };
    },
  };

  function enhance(form, ceremony) {
    var status = form.querySelector("[data-passkey-status]");
    var button = form.querySelector("button[type='submit']");
    function say(message) {
      if (status) status.textContent = message || "";
    }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (button.disabled) return;
      button.disabled = true;
      say(form.dataset.working);
      postJSON(form, form.dataset.optionsUrl, {})
        .then(ceremony.ask)
        .then(function (credential) {
          return postJSON(form, form.action, ceremony.answer(credential, form));
        })
        .then(function (json) {
          window.location.assign(json.redirect || "/");
        })
        .catch(function (problem) {
          var answer = (problem && problem.answer) || {};
          if (answer.confirm) {
            window.location.assign(answer.confirm);
            return;
          }
          // NotAllowedError: the person closed the browser's dialog, or it timed out.
          var cancelled = problem && problem.name === "NotAllowedError";
          say(answer.message || (cancelled ? form.dataset.cancelled : form.dataset.failed));
          button.disabled = false;
        });
    });
  }

  document.querySelectorAll("[data-passkey-supported]").forEach(function (element) {
    element.hidden = false;
  });
  document.querySelectorAll("[data-passkey-unsupported]").forEach(function (element) {
    element.hidden = true;
  });
  document.querySelectorAll("form[data-passkey-register]").forEach(function (form) {
    enhance(form, register);
  });
  document.querySelectorAll("form[data-passkey-sign-in]").forEach(function (form) {
    enhance(form, signIn);
  });
})();
