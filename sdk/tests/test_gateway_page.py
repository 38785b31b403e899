"""GatewayPage: what a payment gateway declares for the portal's payment page, checked when declared;
and the registry accepts a page only from a payment gateway."""

from __future__ import annotations

import pytest
from carefront_sdk.adapters import AdapterRegistry, Port
from carefront_sdk.models import CSP_DIRECTIVES, GatewayPage
from carefront_sdk.testing import FakeGateway


def test_a_page_declares_origins_by_directive_and_its_scripts_in_order() -> None:
    page = GatewayPage(
        csp={"script-src": ("https://js.acmepay.example",), "frame-src": ("https://pay.acmepay.example",)},
        scripts=("https://js.acmepay.example/v2/", "plugins/acmepay/mount.js"),
    )
    assert page.csp["frame-src"] == ("https://pay.acmepay.example",)
    assert page.scripts == ("https://js.acmepay.example/v2/", "plugins/acmepay/mount.js")


def test_the_empty_page_widens_nothing() -> None:
    assert (dict(GatewayPage().csp), GatewayPage().scripts) == ({}, ())


@pytest.mark.parametrize("directive", sorted(CSP_DIRECTIVES))
def test_each_widenable_directive_is_accepted(directive: str) -> None:
    assert GatewayPage(csp={directive: ("https://acmepay.example",)}).csp[directive]


@pytest.mark.parametrize("directive", ["default-src", "frame-ancestors", "base-uri", "object-src", "script-src-elem"])
def test_a_directive_that_guards_the_whole_page_is_refused(directive: str) -> None:
    with pytest.raises(ValueError, match=directive):
        GatewayPage(csp={directive: ("https://acmepay.example",)})


@pytest.mark.parametrize(
    "source",
    [
        "http://js.acmepay.example",  # not https
        "js.acmepay.example",  # no scheme
        "https://",  # no host
        "https://*.acmepay.example",  # a wildcard allows any subdomain
        "https://js.acmepay.example/v2/",  # a path: the policy allows origins only
        "'unsafe-inline'",
        "'unsafe-eval'",
        "https://js.acmepay.example 'unsafe-inline'",  # two sources smuggled into one
        "https://js.acmepay.example; script-src *",  # a directive smuggled in
        "*",
        "data:",
    ],
)
def test_a_source_that_is_not_one_https_origin_is_refused(source: str) -> None:
    with pytest.raises(ValueError, match="not an https:// origin"):
        GatewayPage(csp={"script-src": (source,)})


@pytest.mark.parametrize(
    "script",
    [
        "http://js.acmepay.example/v2/",
        "//js.acmepay.example/v2/",
        "https://",
        "/static/plugins/acmepay/mount.js",
        "mount.js",
        "plugins/mount.js",  # no plugin folder
        "plugins/acmepay/",  # no file
        "plugins/acmepay/../../css/carefront.css",  # out of the plugin's folder
        "javascript:alert(1)",
    ],
)
def test_a_script_neither_https_nor_in_a_plugins_static_folder_is_refused(script: str) -> None:
    with pytest.raises(ValueError, match=r"GatewayPage\.scripts"):
        GatewayPage(scripts=(script,))


def test_a_gateway_registers_its_page_and_other_ports_cannot() -> None:
    page = GatewayPage(csp={"script-src": ("https://js.acmepay.example",)}, scripts=("https://js.acmepay.example/",))
    registry = AdapterRegistry(port=Port.GATEWAY, plugin="acmepay")
    registry.add("acmepay", lambda context: FakeGateway.seeded(), page=page)
    registry.add("acmepay_hosted", lambda context: FakeGateway.seeded())
    assert [registration.page for registration in registry.registrations] == [page, None]
    with pytest.raises(ValueError, match="only a payment gateway declares a page"):
        AdapterRegistry(port=Port.EHR, plugin="acmepay").add("acmepay", lambda context: None, page=page)
