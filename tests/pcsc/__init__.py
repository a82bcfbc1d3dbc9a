"""End-to-end tests of the emulated card through real pcscd + vpcd (see tests/fixtures/pcsc.py)."""
