"""The Faust stream app: validate Kafka events, map them to notifications, publish."""
