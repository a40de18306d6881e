"""HTTP callers that are not signed-in users: page links, Slack and PagerDuty
callbacks, Twilio replies, integrations' alerts and heartbeat pings (each keyed or
signed its own way)."""
