"""Tests of the emulated card: core, applet, image, CLI."""
