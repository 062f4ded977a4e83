"""The embedded local stack: a real Kafka-protocol broker, a real S3 server and Dagster."""
