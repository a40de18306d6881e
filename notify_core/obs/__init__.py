"""What the daemon tells about itself: Prometheus metrics, readiness, log fields
and the audit trail of sensitive actions."""
