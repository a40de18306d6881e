"""Heartbeats: what a silent source means (pure), `heartbeats.yaml`, and the
watch that opens and resolves their incidents."""
