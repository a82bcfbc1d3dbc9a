"""The emulated SIM card: file system, CHV, the sync-object applet, the card image, vpcd."""
