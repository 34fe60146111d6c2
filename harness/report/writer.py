"""Write every report of a suite run and point ``reports/latest`` at it."""

from __future__ import annotations

import os
from pathlib import Path

from harness.report.html import write_html
from harness.report.junit import write_junit
from harness.report.summary import write_summary
from harness.suite import SuiteResult


def write_reports(suite: SuiteResult, run_dir: Path) -> Path:
    """Write summary.json, junit.xml and report.html into ``run_dir``; update ``latest``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_summary(suite, run_dir / "summary.json")
    write_junit(suite, run_dir / "junit.xml")
    write_html(suite, run_dir / "report.html")
    latest = run_dir.parent / "latest"
    tmp = run_dir.parent / f".latest-{os.getpid()}"
    if tmp.is_symlink():
        tmp.unlink()
    tmp.symlink_to(run_dir.name)
    tmp.replace(latest)  # atomic: readers never see a missing ``latest``
    return run_dir / "summary.json"
