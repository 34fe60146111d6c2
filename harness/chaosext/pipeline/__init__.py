"""Activities on the pipeline under test."""
