/* Mounts Stripe's Payment Element into the portal's payment page and confirms the payment with it.
 *
 * The page (carefront_sdk GatewayPage) gives a form holding <div id="gateway-element"> with
 * data-client-secret, data-publishable-key, data-reference and data-return-url, a
 * <p id="gateway-error" role="alert"> with data-unavailable (a message in the reader's language), and
 * its submit button hidden until the element is ready, so that a visitor without JavaScript sees only
 * the page's <noscript> advice. Card details go from Stripe's frame to Stripe; this file never sees them.
 * Once Stripe has the payment (after 3-D Secure too), the browser goes to the return URL, where the
 * portal reads the payment from Stripe.
 */
(function () {
  "use strict";

  var mount = document.getElementById("gateway-element");
  var error = document.getElementById("gateway-error");
  if (!mount || !error) {
    return;
  }
  var form = mount.closest("form");
  var button = form && form.querySelector("button[type=submit]");

  // Show ``message``; with none, the page's own "cannot take a card now" text.
  function say(message) {
    error.textContent = message === undefined ? error.dataset.unavailable || "" : message;
  }

  if (typeof window.Stripe !== "function" || !form || !button) {
    say(); // Stripe.js did not load (blocked or offline): the form cannot take a card.
    return;
  }

  var secret = mount.dataset.clientSecret;
  var stripe = window.Stripe(mount.dataset.publishableKey);
  var elements = stripe.elements({ clientSecret: secret, locale: document.documentElement.lang || "auto" });
  var element = elements.create("payment", { layout: "tabs" });
  // A SetupIntent saves a card for later; a PaymentIntent pays now.
  var confirm = secret.indexOf("seti_") === 0 ? stripe.confirmSetup : stripe.confirmPayment;

  element.on("ready", function () {
    button.hidden = false;
  });
  element.on("loaderror", function () {
    say();
  });
  element.mount(mount);

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (button.disabled) {
      return; // a double tap: the first confirmation is still under way
    }
    button.disabled = true;
    say("");
    var returnUrl = mount.dataset.returnUrl;
    // Stripe.js leaves for return_url itself only when a payment method needs it (a bank's own page);
    // otherwise (cards, 3-D Secure in Stripe's frame) we go there, without the client secret that
    // Stripe.js would put in the URL, where logs would keep it.
    confirm
      .call(stripe, { elements: elements, confirmParams: { return_url: returnUrl }, redirect: "if_required" })
      .then(function (result) {
        var problem = result && result.error;
        if (!problem) {
          window.location.assign(returnUrl);
          return;
        }
        // Stripe words card and form errors for the payer; anything else gets the portal's own message.
        var forPayer = problem && (problem.type === "card_error" || problem.type === "validation_error");
        say(forPayer ? problem.message : undefined);
        button.disabled = false;
      }, function () {
        say();
        button.disabled = false;
      });
  });
})();
