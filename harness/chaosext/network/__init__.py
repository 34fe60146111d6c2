"""Activities on the network between the pipeline and its dependencies."""
