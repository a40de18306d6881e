"""Alerts from systems that do not write to Kafka: `integrations.yaml` and
the records their payloads become."""
