"""What the codes on a statement mean, in words a patient reads.

One :func:`dictionary_for` per page: it collects every code on the page, asks the plugin host once
(``carefront_code_descriptions``, one hook call per code system) and lays the plugins' answers over
the portal's own baseline below. A line code nobody describes keeps the EHR's description of the
line; an adjustment code nobody describes reads as the code ("Adjustment reason 45").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from carefront_sdk.models import ChargeLine, CodeSystem

from portal.i18n import N_
from portal.plugin_host import PluginHost

PATIENT_OWES_GROUP = "PR"
"""X12 group code of adjustments that the patient owes (deductible, coinsurance, copay)."""

BASELINE: dict[str, dict[str, str]] = {
    CodeSystem.CAGC: {
        "CO": N_("Contractual adjustment: you don't owe this"),
        "PR": N_("Your share under your plan"),
        "OA": N_("Other adjustment: you don't owe this"),
        "PI": N_("Reduced by your insurer: you don't owe this"),
    },
    CodeSystem.CARC: {
        "1": N_("Your deductible: what you pay each year before your plan starts to pay."),
        "2": N_("Your coinsurance: the percentage of the cost your plan asks you to pay."),
        "3": N_("Your copay: the fixed amount your plan asks you to pay for this service."),
        "16": N_("The claim was missing information; the hospital needs to correct it and send it again."),
        "18": N_("Your insurer already received this same claim, so it did not pay it twice."),
        "23": N_("Your other insurer already paid or adjusted part of this."),
        "26": N_("The service was before your coverage started."),
        "27": N_("The service was after your coverage ended."),
        "45": N_("The charge is more than the price agreed with your insurer; the hospital writes off the difference."),
        "50": N_("Your insurer decided this service was not medically necessary."),
        "96": N_("Your plan does not cover this charge."),
        "97": N_("This is paid as part of another service on the same visit, so it has no separate payment."),
        "197": N_("Your plan needed approval before this service, and there was none on file."),
        "204": N_("Your current plan does not cover this service."),
        "242": N_("The provider is not in your plan's network, so your plan covers less."),
        "253": N_("A reduction in Medicare payments required by federal law. You don't owe it."),
    },
}
"""The portal's own explanations (English msgids, translated when shown); plugins extend and override."""


UNKNOWN_REASON = N_("Adjustment reason %(code)s")
UNKNOWN_REMARK = N_("Remark %(code)s")


@dataclass(frozen=True, slots=True)
class Dictionary:
    """The descriptions of one page's codes, by ``(code system, code)``, in the page's language."""

    descriptions: Mapping[tuple[str, str], str]
    gettext: Callable[[str], str]

    def line(self, line: ChargeLine) -> str:
        return self.descriptions.get((line.code_system, line.code)) or line.description

    def reason(self, code: str) -> str:
        return self.descriptions.get((CodeSystem.CARC, code)) or self.gettext(UNKNOWN_REASON) % {"code": code}

    def remark(self, code: str) -> str:
        return self.descriptions.get((CodeSystem.RARC, code)) or self.gettext(UNKNOWN_REMARK) % {"code": code}

    def group(self, code: str) -> str:
        return self.descriptions.get((CodeSystem.CAGC, code)) or code


def codes_on(lines: Iterable[ChargeLine]) -> dict[str, set[str]]:
    """Every code on these lines, by code system: the lines' own and their adjustments'."""
    wanted: dict[str, set[str]] = {}
    for line in lines:
        wanted.setdefault(line.code_system, set()).add(line.code)
        for adjustment in line.adjustments:
            wanted.setdefault(CodeSystem.CAGC, set()).add(adjustment.group_code)
            wanted.setdefault(CodeSystem.CARC, set()).add(adjustment.reason_code)
            wanted.setdefault(CodeSystem.RARC, set()).update(adjustment.remark_codes)
    return wanted


def dictionary_for(
    host: PluginHost, lines: Iterable[ChargeLine], language: str, gettext: Callable[[str], str]
) -> Dictionary:
    """The dictionary of a page showing ``lines``, in ``language`` (``gettext`` translates the baseline)."""
    wanted = codes_on(lines)
    baseline = {
        (system, code): gettext(BASELINE[system][code])
        for system, codes in wanted.items()
        if system in BASELINE
        for code in codes
        if code in BASELINE[system]
    }
    return Dictionary({**baseline, **host.code_descriptions(wanted, language)}, gettext)
