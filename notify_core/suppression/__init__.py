"""Is an incident quiet now: the pure policy (maintenance, silences,
inhibition), `suppression.yaml`, the shared store, and the audit of what ends on its own."""
