"""The Kubernetes backend: one implementation of ``Cluster`` over the official client, for every cluster."""
