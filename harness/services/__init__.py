"""The pipeline's dependencies, started on loopback ports: Prometheus and an S3 store."""

from harness.services.prometheus import PrometheusServer, ScrapeTarget
from harness.services.s3 import S3_ENDPOINT_ENV, ExternalS3, MotoS3Server, check_s3_reachable, s3_service

__all__ = [
    "PrometheusServer",
    "ScrapeTarget",
    "MotoS3Server",
    "ExternalS3",
    "S3_ENDPOINT_ENV",
    "check_s3_reachable",
    "s3_service",
]
