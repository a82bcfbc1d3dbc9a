"""The host side of the card: PC/SC link, SIM files, EF codecs, the three sync commands."""
