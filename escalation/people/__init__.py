"""People: contact methods, verification, personal notification rules, and the senders
that page a person by name (email, SMS and voice through a Twilio-compatible API, Slack
direct messages, Web Push)."""
