"""Tests of the EF codecs (cardio.codecs)."""
