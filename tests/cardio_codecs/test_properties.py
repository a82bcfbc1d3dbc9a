"""Round-trip and robustness properties of the EF codecs (hypothesis)."""

from __future__ import annotations

import contextlib
import itertools
import random

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from cardio.codecs import (
    DIGITS,
    AdnRecord,
    AlphaForm,
    CodecError,
    MalformedRecord,
    NameTooLong,
    alpha_length,
    choose_alpha_form,
    decode_alpha,
    encode_alpha,
    encode_alpha_form,
    fit_name,
)

_GSM = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡AZaz§¿äöñüà"
_EXT = "^{}\\[~]|€\f"
_GREEK = "".join(chr(c) for c in range(0x0391, 0x03CA))
_CYRILLIC = "".join(chr(c) for c in range(0x0410, 0x0450))
_ARMENIAN = "".join(chr(c) for c in range(0x0531, 0x0588))  # crosses a 128 boundary
_BMP = st.characters(max_codepoint=0xFFFE, exclude_categories=["Cs"])

# Mixtures that reach every coding: pure GSM, GSM + escapes, one script (81/82), anything (80).
names = st.one_of(
    st.text(st.sampled_from(_GSM + _EXT), max_size=40),
    st.text(st.sampled_from(_GSM + _GREEK), max_size=40),
    st.text(st.sampled_from(_GSM + _CYRILLIC), max_size=40),
    st.text(st.sampled_from(_GSM[:20] + _ARMENIAN), max_size=40),
    st.text(_BMP, max_size=30),
)
short_numbers = st.text(st.sampled_from(DIGITS), max_size=20)
long_numbers = st.text(st.sampled_from(DIGITS), min_size=21, max_size=120)


@given(names, st.integers(0, 8))
def test_any_name_that_encodes_decodes_back_equal(name: str, slack: int) -> None:
    size = alpha_length(name) + slack
    raw = encode_alpha(name, size)
    assert len(raw) == size
    assert decode_alpha(raw) == name


@given(names)
def test_the_chosen_coding_is_never_longer_than_another_valid_one(name: str) -> None:
    assume(name)
    form, chosen = choose_alpha_form(name)
    assert encode_alpha_form(name, form) == chosen
    for other in AlphaForm:
        data = encode_alpha_form(name, other)
        if data is None:
            continue
        assert decode_alpha(data) == name, other  # the alternative is genuinely valid
        assert len(chosen) <= len(data), (form, other)


@given(names, st.integers(0, 40))
def test_a_name_either_fits_or_raises_name_too_long(name: str, size: int) -> None:
    needed = alpha_length(name)
    if needed > size:
        with pytest.raises(NameTooLong) as info:
            encode_alpha(name, size)
        assert info.value.needed == needed
    else:
        assert decode_alpha(encode_alpha(name, size)) == name


@given(names, st.integers(0, 30))
def test_fit_name_is_the_longest_prefix_that_encodes(name: str, size: int) -> None:
    fitted = fit_name(name, size)
    assert name.startswith(fitted)
    assert decode_alpha(encode_alpha(fitted, size)) == fitted
    if fitted != name:
        assert alpha_length(name[: len(fitted) + 1]) > size


@st.composite
def records(draw: st.DrawFn, numbers: st.SearchStrategy[str]) -> AdnRecord:
    digits = draw(numbers)
    plus = "+" if digits and draw(st.booleans()) else ""
    name = draw(names.filter(lambda n: alpha_length(n) <= 30))
    assume(name or digits)
    ccp = draw(st.integers(0, 255))
    return AdnRecord(name, plus + digits, ccp=ccp)


@given(records(short_numbers), st.integers(0, 6))
def test_records_round_trip_without_ext1(record: AdnRecord, slack: int) -> None:
    size = alpha_length(record.name) + slack
    raw = record.encode(size)
    assert len(raw) == size + 14
    assert AdnRecord.decode(raw) == record
    no_ext1: dict[int, bytes] = {}
    assert AdnRecord.decode(raw, no_ext1.__getitem__) == record  # no chain: reader unused


@given(records(long_numbers), st.randoms(use_true_random=False))
def test_records_round_trip_through_ext1(record: AdnRecord, rnd: random.Random) -> None:
    free = list(range(1, 255))
    rnd.shuffle(free)
    ids = iter(free)
    size = alpha_length(record.name)
    raw, chain = record.encode_with_ext(size, lambda: next(ids))
    assert len(chain) == -(-(len(record.digits) - 20) // 20)
    assert all(len(ext) == 13 for _, ext in chain)
    store = dict(chain)
    decoded = AdnRecord.decode(raw, store.__getitem__)
    assert decoded is not None
    assert decoded.ext1 == chain[0][0]
    assert (decoded.name, decoded.number, decoded.ton_npi, decoded.ccp) == (
        record.name,
        record.number,
        record.ton_npi,
        record.ccp,
    )
    # Without the reader the ADN record alone holds the first 20 digits.
    head = AdnRecord.decode(raw)
    assert head is not None
    assert head.digits == record.digits[:20]


@given(st.binary(min_size=0, max_size=60))
def test_decode_of_arbitrary_bytes_gives_a_record_or_a_codec_error(raw: bytes) -> None:
    try:
        record = AdnRecord.decode(raw)
    except CodecError:
        return
    if record is not None:  # whatever decodes re-encodes to something that decodes the same
        assert AdnRecord.decode(record.encode(len(raw) - 14)) == record


# EXT1 records that look plausible (type 01/02, links among ids 0-6 or FF) plus noise.
ext1_records = st.one_of(
    st.builds(
        lambda t, n, body, nxt: bytes([t, n]) + body + bytes([nxt]),
        st.sampled_from([0x01, 0x02, 0x02, 0xFF, 0x03]),
        st.integers(0, 12),
        st.binary(min_size=10, max_size=10),
        st.sampled_from([0, 1, 2, 3, 4, 5, 6, 0xFF]),
    ),
    st.binary(max_size=14),
)


@given(
    st.binary(max_size=8),
    st.binary(min_size=10, max_size=10),
    st.sampled_from([0, 1, 2, 3, 4, 5, 6, 255]),
    st.dictionaries(st.integers(0, 6), ext1_records, max_size=7),
)
def test_decode_with_an_arbitrary_ext1_file_never_crashes(
    alpha: bytes, bcd: bytes, ext1_id: int, ext1: dict[int, bytes]
) -> None:
    def reader(rec_id: int) -> bytes:
        return ext1.get(rec_id, b"\xff" * 13)

    raw = alpha + b"\x0b\x81" + bcd + bytes([0xFF, ext1_id])
    with contextlib.suppress(CodecError):
        record = AdnRecord.decode(raw, reader)
        assert record is not None


@given(st.binary(max_size=40))
def test_decode_alpha_of_arbitrary_bytes_is_text_or_malformed(raw: bytes) -> None:
    try:
        name = decode_alpha(raw)
    except MalformedRecord:
        return
    assert decode_alpha(encode_alpha(name, alpha_length(name))) == name


def test_ext1_chain_with_every_record_of_ef_ext1() -> None:
    # The longest number a card can hold: 20 + 254 x 20 digits, all EXT1 ids used.
    number = "".join(itertools.islice(itertools.cycle(DIGITS), 20 + 254 * 20))
    ids = iter(range(1, 255))
    raw, chain = AdnRecord("Max", number).encode_with_ext(18, lambda: next(ids))
    assert [rec_id for rec_id, _ in chain] == list(range(1, 255))
    decoded = AdnRecord.decode(raw, dict(chain).__getitem__)
    assert decoded is not None
    assert decoded.number == number
