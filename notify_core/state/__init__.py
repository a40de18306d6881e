"""What the daemon remembers beside the history: incidents, their timelines and
the latest KPI values per site (memory and Redis twins)."""
