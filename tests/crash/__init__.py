"""Crash matrix of issue #4: kill -9 of the phone, the PDA and the card emulator at every step."""
