"""The three tiers of failure an adapter may raise, and nothing else.

- ``Refused``: an anticipated "no" whose ``message`` the patient may read (card declined, slot taken,
  no matching patient). ``code`` is stable and machine-readable so the portal can show its own
  translated text for codes it knows, and the adapter's message otherwise.
- ``Unavailable``: the other system could not answer (timeout, 5xx, bad credentials). The portal logs
  ``detail``, shows a generic message and retries or queues the work; ``detail`` never reaches a
  patient, so it may name hosts and status codes (never PHI).
- ``RedirectRequired``: the browser must go somewhere first (3-D Secure, a hosted checkout page).

Anything else an adapter lets escape is treated by the plugin host as ``Unavailable``.
"""

from __future__ import annotations

__all__ = [
    "CarefrontError",
    "ConfigError",
    "NotFound",
    "RedirectRequired",
    "Refused",
    "Unavailable",
    "WebhookRejected",
]


class CarefrontError(Exception):
    """The base of every error the SDK defines."""


class Refused(CarefrontError):
    """An anticipated refusal the patient sees, e.g. ``Refused("card_declined", "Your card was declined.")``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class NotFound(Refused):
    """The id names nothing the system knows; the portal answers 404."""

    def __init__(self, what: str, ident: str) -> None:
        super().__init__("not_found", f"No {what} was found.")
        self.what = what
        self.ident = ident


class Unavailable(CarefrontError):
    """The dependency could not answer now; ``retry_after`` seconds, when the vendor said."""

    def __init__(self, detail: str, *, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


class RedirectRequired(CarefrontError):
    """The browser must be sent to ``url`` to go on (3-D Secure, hosted checkout)."""

    def __init__(self, url: str, *, reason: str = "") -> None:
        super().__init__(f"redirect to {url}")
        self.url = url
        self.reason = reason


class WebhookRejected(CarefrontError):
    """A webhook whose signature, timestamp or body did not verify; the portal answers 400."""


class ConfigError(CarefrontError):
    """A plugin's configuration is missing or wrong; start-up stops with this message."""

    def __init__(self, plugin: str, field: str, expected: str) -> None:
        super().__init__(f"plugin {plugin!r}: setting {field!r}: {expected}")
        self.plugin = plugin
        self.field = field
        self.expected = expected
