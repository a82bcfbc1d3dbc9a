"""Property tests of the vCard editor: any valid projection reads back, nothing else moves."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from pda.store import Projection
from pda.vcard import apply_projection, new_card, parse_card

from .conftest import DATA

names = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=120
).filter(lambda s: s.strip() != "")
numbers = st.none() | st.from_regex(r"\+?[0-9*#,?!]{1,30}", fullmatch=True).filter(
    lambda s: s.lstrip("+") != ""
)
projections = st.builds(Projection, names, numbers)
cards = st.sampled_from(["v3_greek.vcf", "v4_cyrillic.vcf", "v3_cjk.vcf", "v3_no_uid.vcf"])


def untouched(text: str) -> list[str]:
    lines = re.split(r"\r?\n(?![ \t])", text)
    return [line for line in lines if not re.match(r"([A-Za-z0-9-]+\.)?(FN|N|TEL)[;:]", line)]


@settings(max_examples=150, deadline=None)
@given(cards, projections)
def test_edit_reads_back_and_keeps_the_rest(card: str, projection: Projection) -> None:
    before = (DATA / card).read_bytes().decode()
    after = apply_projection(before, projection)
    got = parse_card(after).projection
    assert got.name == projection.name
    if projection.number is not None:
        assert got.number == projection.number
    assert untouched(after) == untouched(before)
    assert apply_projection(after, got) is after  # a second identical update changes nothing


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["3.0", "4.0"]), projections)
def test_new_card_reads_back(version: str, projection: Projection) -> None:
    text = new_card("some-uid", projection, version)
    parsed = parse_card(text)
    assert parsed.projection == projection
    assert parsed.uid == "some-uid"
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
