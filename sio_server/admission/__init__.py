"""Who may connect and how often: JWT auth, the Origin rule, connection and
rate limits, and the one admission check every transport runs."""
