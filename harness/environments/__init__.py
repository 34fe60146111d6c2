"""How each kind of cluster is stood up (or reached) with the pipeline's services: one module per kind."""
