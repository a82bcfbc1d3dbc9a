"""EF codecs: EF.ADN records, alpha identifiers (GSM 7-bit / UCS2), BCD, EF.EXT1.

Pure functions and frozen values, no I/O: the SIM file layer reads and writes the
bytes, these modules say what they mean (TS 51.011 §10.5.1, §10.5.10; TS 102 221
Annex A; TS 23.038 §6.2.1).
"""

from __future__ import annotations

from cardio.codecs.adn import (
    ADN_DIGITS,
    ADN_TRAILER_LEN,
    AUTO_TON_NPI,
    MAX_NUMBER_DIGITS,
    TON_NPI_INTERNATIONAL,
    TON_NPI_UNKNOWN,
    AdnRecord,
    empty_adn,
)
from cardio.codecs.alpha import (
    AlphaForm,
    alpha_length,
    card_name,
    check_name,
    choose_alpha_form,
    decode_alpha,
    encode_alpha,
    encode_alpha_form,
    fit_name,
)
from cardio.codecs.bcd import DIGITS, decode_bcd, encode_bcd
from cardio.codecs.errors import (
    CodecError,
    InvalidField,
    InvalidNumber,
    MalformedRecord,
    NameTooLong,
    NumberTooLong,
    UnencodableName,
)
from cardio.codecs.ext1 import (
    EXT1_DIGITS,
    EXT1_RECORD_LEN,
    MAX_EXT1_ID,
    NO_EXT1,
    Ext1Record,
    encode_ext1_chain,
    read_ext1_chain,
)
from cardio.codecs.gsm7 import decode_gsm7, encode_gsm7

__all__ = [
    "ADN_DIGITS",
    "ADN_TRAILER_LEN",
    "AUTO_TON_NPI",
    "DIGITS",
    "EXT1_DIGITS",
    "EXT1_RECORD_LEN",
    "MAX_EXT1_ID",
    "MAX_NUMBER_DIGITS",
    "NO_EXT1",
    "TON_NPI_INTERNATIONAL",
    "TON_NPI_UNKNOWN",
    "AdnRecord",
    "AlphaForm",
    "CodecError",
    "Ext1Record",
    "InvalidField",
    "InvalidNumber",
    "MalformedRecord",
    "NameTooLong",
    "NumberTooLong",
    "UnencodableName",
    "alpha_length",
    "card_name",
    "check_name",
    "choose_alpha_form",
    "decode_alpha",
    "decode_bcd",
    "decode_gsm7",
    "empty_adn",
    "encode_alpha",
    "encode_alpha_form",
    "encode_bcd",
    "encode_ext1_chain",
    "encode_gsm7",
    "fit_name",
    "read_ext1_chain",
]
