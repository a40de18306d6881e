"""Who is on call: schedules (`oncall.yaml`), the rotation maths (pure), overrides, and
the resolver the escalation engine asks when a level with `schedule:` or `site_oncall:`
fires."""
