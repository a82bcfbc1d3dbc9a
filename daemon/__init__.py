"""The phone side: settings, the sync runner, the CLI (and later MQTT, presence, systemd)."""
