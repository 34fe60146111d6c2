"""Activities on the faults of the running experiment."""
