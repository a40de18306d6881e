"""The per-tenant ordered history every event id comes from, and whether a
client's resume point in it can be recovered."""
