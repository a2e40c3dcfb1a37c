"""HR mutation events in: the HTTP endpoint and the decoding shared with the Kafka path."""
