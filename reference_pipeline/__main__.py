"""``python -m reference_pipeline <step>``: run one step as its own process.

Exit codes: 0 success (or idempotent skip), 2 user/config error (one line on
stderr), 3 a gate failed (freshness, AUC), 4 fenced out: another attempt of the
run holds the training lease (one line on stderr), 143 stopped gracefully by SIGTERM.
"""

from __future__ import annotations

import sys
import time

from . import broken
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
from .events import emit
from .metrics import Metrics
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
    emit("run_started", pipeline=config.pipeline, run_id=config.run_id, date=config.date,
         kind=config.kind, step_name=step_name)
    try:
        try:
            metrics = Metrics(config)
        except OSError as error:
            raise UserError(f"cannot serve metrics on 127.0.0.1:{config.metrics_port} ({error}); "
                            "set METRICS_PORT to a free port") from None
        store = Store(config.s3_endpoint_url, config.s3_bucket, on_retries=metrics.s3_retries.inc,
                      retry=broken.NO_RETRY not in config.broken,
                      unconditional_publish=broken.UNCONDITIONAL_PUBLISH in config.broken)
        store.ensure_bucket()
        load(step_name)(Context(config=config, store=store, metrics=metrics, step_name=step_name))
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
        emit("step_finished", run_id=config.run_id, step_name=step_name, seconds=round(seconds, 6))
    # Stay up so a scraper (1 s interval) sees the final values before the process is gone.
    time.sleep(config.metrics_linger_seconds if config.metrics_port is not None else 0.0)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
