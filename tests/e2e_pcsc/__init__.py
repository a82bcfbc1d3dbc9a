"""Whole syncs through real PC/SC (pcscd + vpcd + card serve) and a real PDA process."""
