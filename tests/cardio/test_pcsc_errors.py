"""PC/SC return codes translated into the error tree (no pcscd needed)."""

from __future__ import annotations

import pytest
from smartcard import scard

from cardio import errors
from cardio.pcsc import choose_reader, pcsc_error


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (scard.SCARD_W_REMOVED_CARD, errors.CardRemoved),
        (scard.SCARD_W_RESET_CARD, errors.CardReset),  # a CardRemoved: the connection is over
        (scard.SCARD_E_NO_SMARTCARD, errors.NoCard),
        (scard.SCARD_W_UNRESPONSIVE_CARD, errors.NoCard),
        (scard.SCARD_E_TIMEOUT, errors.CardTimeout),
        (scard.SCARD_E_READER_UNAVAILABLE, errors.ReaderGone),
        (scard.SCARD_E_NO_SERVICE, errors.ReaderGone),
        (scard.SCARD_E_UNKNOWN_READER, errors.ReaderGone),
        (scard.SCARD_F_COMM_ERROR, errors.ReaderGone),
        (scard.SCARD_E_INVALID_PARAMETER, errors.LinkError),
    ],
)
def test_pcsc_codes(code: int, cls: type[errors.LinkError]) -> None:
    error = pcsc_error(code, "transmitting")
    assert type(error) is cls
    assert str(error).startswith("transmitting: ")
    assert f"0x{code & 0xFFFFFFFF:08X}" in str(error)


def test_choose_reader() -> None:
    readers = ["Virtual PCD 00 00", "Virtual PCD 00 01", "Virtual PCD 00 0"]
    assert choose_reader(readers, "00 01") == "Virtual PCD 00 01"
    # An exact name wins even when it is a substring of others.
    assert choose_reader(readers, "Virtual PCD 00 0") == "Virtual PCD 00 0"
    with pytest.raises(errors.AmbiguousReader, match="3 readers match 'PCD'"):
        choose_reader(readers, "PCD")
    with pytest.raises(errors.NoReader, match="readers: none"):
        choose_reader([], "")
