"""Chaos Toolkit activities on the pipeline's input data (late and missing partitions)."""
