"""``python -m reference_pipeline <step>``: run one step as its own process.

Exit codes: 0 success (or idempotent skip), 2 user/config error (one line on
stderr), 3 a gate failed (freshness, AUC), 4 fenced out: another attempt of the
run holds the training lease (one line on stderr), 143 stopped gracefully by SIGTERM.
"""

from __future__ import annotations

import sys
import time

from mlchaos_probe import environment
from mlchaos_probe import events as probe
from mlchaos_probe.metrics import PipelineMetrics

from . import broken, numerics
from .config import Config
from .errors import (
    EXIT_FENCED,
    EXIT_GATE_FAILED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_USER_ERROR,
    Fenced,
    GateFailed,
    Terminated,
    UserError,
)
from .s3 import Store
from .steps import STEPS, Context, load


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in STEPS:
        print(f"usage: python -m reference_pipeline {{{'|'.join(STEPS)}}}", file=sys.stderr)
        return EXIT_USER_ERROR
    step_name = argv[0]
    started = time.perf_counter()
    try:
        config = Config.from_env()
    except UserError as error:
        print(f"reference_pipeline {step_name}: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    probe.run_started(pipeline=config.pipeline, run_id=config.run_id, date=config.date, kind=config.kind,
                      step_name=step_name)
    step = load(step_name)  # imports the step's libraries (torch), so the fingerprint sees their settings
    try:
        numerics.apply_matmul_precision()  # the image's numeric settings, before they are fingerprinted
    except UserError as error:
        print(f"reference_pipeline {step_name}: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    environment.report(run_id=config.run_id)
    try:
        try:
            metrics = PipelineMetrics(pipeline=config.pipeline, run_id=config.run_id, kind=config.kind,
                                      port=config.metrics_port)
        except OSError as error:
            raise UserError(f"{error} (METRICS_PORT)") from None
        store = Store(config.s3_endpoint_url, config.s3_bucket, on_retries=metrics.s3_retries,
                      retry=broken.NO_RETRY not in config.broken,
                      unconditional_publish=broken.UNCONDITIONAL_PUBLISH in config.broken)
        store.ensure_bucket()
        step(Context(config=config, store=store, metrics=metrics, step_name=step_name))
        code = EXIT_OK
    except UserError as error:
        print(f"reference_pipeline {step_name}: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except GateFailed as error:
        print(f"reference_pipeline {step_name}: {error}", file=sys.stderr)
        code = EXIT_GATE_FAILED
    except Fenced as error:
        print(f"reference_pipeline {step_name}: {error}", file=sys.stderr)
        return EXIT_FENCED
    except Terminated:
        return EXIT_TERMINATED  # within the grace period: no linger
    seconds = time.perf_counter() - started
    metrics.step_duration(step_name, seconds)
    if code == EXIT_OK:
        probe.step_finished(run_id=config.run_id, step_name=step_name, seconds=round(seconds, 6))
    # Stay up so a scraper (1 s interval) sees the final values before the process is gone.
    time.sleep(config.metrics_linger_seconds if config.metrics_port is not None else 0.0)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
