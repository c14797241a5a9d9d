"""One webinar over several worker processes: Redis, the supervisor, the worker registry,
the bus between workers and the media pipes (see docs/architecture.md)."""
