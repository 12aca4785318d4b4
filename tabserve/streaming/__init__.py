"""The stream worker (Redis Streams, Kafka): micro-batches through the shared scoring core."""
