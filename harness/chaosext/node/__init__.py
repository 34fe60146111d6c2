"""Activities on nodes."""
