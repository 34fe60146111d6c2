"""Probes of the cluster and its services."""
