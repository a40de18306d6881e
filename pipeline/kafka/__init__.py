"""Kafka as the pipeline uses it: client tuning, topic creation, batch
consumption and consumer lag."""
