"""Account mail: the messages, and the outbox worker that delivers them over SMTP."""
