"""Activities on pods' resources (memory and CPU limits of a running pod)."""
