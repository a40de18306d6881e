"""The wire: event shapes (Kafka envelopes in, notifications out), event ids, and
who may see what (rooms). Imported by every side; imports nothing of theirs."""
