"""Activities on the pipeline's model registry."""
