"""Activities on the object store the pipeline uses."""
