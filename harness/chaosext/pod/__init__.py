"""Activities on pods."""
