"""KPI threshold rules: the model, `thresholds.yaml` and the rules in force.
(The evaluator is `pipeline.thresholds`.)"""
