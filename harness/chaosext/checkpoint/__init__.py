"""Activities on stored checkpoints."""
