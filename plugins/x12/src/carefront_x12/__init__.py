"""Carefront's X12 005010 clearinghouse plugin.

Eligibility (270/271, 005010X279A1) and claim status (276/277, 005010X212) for the clearinghouse
port, an 835 remittance decoder (005010X221A1) and the CARC/RARC dictionary for the billing pages:

- :mod:`carefront_x12.core`: delimiters, tokenizer, envelopes, :class:`~carefront_x12.core.X12Error`;
- :mod:`carefront_x12.eligibility`, :mod:`carefront_x12.claim_status`, :mod:`carefront_x12.remittance`;
- :mod:`carefront_x12.codes` and :mod:`carefront_x12.adjustment_codes`: code lists in plain words;
- :mod:`carefront_x12.transport`: HTTPS real-time and SFTP batch;
- :mod:`carefront_x12.adapter`: the ``x12`` clearinghouse adapter.
"""

from carefront_x12.core import X12Error
from carefront_x12.remittance import Remittance, parse_835

__all__ = ["Remittance", "X12Error", "parse_835"]
