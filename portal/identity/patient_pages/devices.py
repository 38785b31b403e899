"""A device named the way its owner knows it ("Safari on iPhone"), from a browser's user agent."""

from __future__ import annotations

from collections.abc import Callable

from portal.i18n import N_

# Order matters: Edge and Opera say "Chrome" too, Chrome says "Safari", and Android says "Linux".
_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chrome/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("Windows", "Windows"),
    ("Mac OS X", "Mac"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)
UNKNOWN = N_("Unknown device")
ON = N_("%(browser)s on %(system)s")


def device_name(user_agent: str, gettext: Callable[[str], str]) -> str:
    """ "Chrome on Android", "Firefox", "iPhone" or "Unknown device", in the reader's language."""
    browser = next((name for marker, name in _BROWSERS if marker in user_agent), None)
    system = next((name for marker, name in _SYSTEMS if marker in user_agent), None)
    if browser and system:
        return gettext(ON) % {"browser": browser, "system": system}
    return browser or system or gettext(UNKNOWN)
