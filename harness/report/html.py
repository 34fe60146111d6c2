"""``report.html``: what a person reads after a run."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from harness.baseline import describe
from harness.experiment.result import ExperimentResult
from harness.history.store import load
from harness.report.summary import iso
from harness.report.timeline import timeline_png
from harness.suite import SuiteResult

_COLORS = {"pass": "#1a7f37", "fail": "#cf222e", "unknown": "#9a6700"}
_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#1f2328}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #d0d7de;padding:4px 8px;
vertical-align:top;text-align:left;font-size:14px}.v{font-weight:bold;color:white;border-radius:4px;padding:1px 6px}
code{font-size:13px}
"""


def _verdict(v: str) -> str:
    return f'<span class="v" style="background:{_COLORS.get(v, "#555")}">{html.escape(v)}</span>'


def _num(x: float | int | None, fmt: str = "{}") -> str:
    return "\N{EN DASH}" if x is None else fmt.format(x)


def _experiment(r: ExperimentResult) -> str:
    e = html.escape
    parts = [f"<h2>{e(r.name)}: {r.score.value:.1f}</h2><p>{e(r.title)}</p>"]
    parts.append(f"<p>Score = <code>{e(r.score.formula)}</code> = {r.score.value:.1f} · status {e(r.status)}"
                 f"{' · steady state DEVIATED' if r.deviated else ''} · run <code>{e(r.run_id)}</code></p>")
    if r.error:
        parts.append(f"<p><b>Error:</b> {e(r.error)}</p>")
    if r.history_path.exists():
        png = timeline_png(load(r.history_path), r.faults, run_id=r.run_id, title=r.title)
        parts.append(f'<img alt="timeline" src="data:image/png;base64,{base64.b64encode(png).decode()}">')
    parts.append("<table><tr><th>check</th><th>verdict</th><th>weight</th><th>evidence</th></tr>")
    for c in r.checks:
        evidence = "<br>".join(e(line) for line in c.evidence)
        parts.append(f"<tr><td>{e(c.name)}</td><td>{_verdict(c.verdict)}</td><td>{c.weight:g}</td><td>{evidence}</td></tr>")
    parts.append("</table>")
    if r.faults:
        parts.append("<table><tr><th>fault</th><th>target</th><th>injected</th><th>exit</th><th>last step</th>"
                     "<th>latest checkpoint</th><th>restored</th><th>steps lost</th><th>recovery (s)</th></tr>")
        for f in r.faults:
            parts.append(
                f"<tr><td>{e(f.fault)}</td><td>{e(f.target)}</td><td>{e(iso(f.injected_at) or '')}</td>"
                f"<td>{_num(f.exit_code)}</td><td>{_num(f.last_step_before)}</td><td>{_num(f.latest_checkpoint)}</td>"
                f"<td>{_num(f.restored_step)}</td><td>{_num(f.steps_lost)}</td>"
                f"<td>{_num(f.recovery_seconds, '{:.2f}')}</td></tr>"
            )
        parts.append("</table>")
    return "\n".join(parts)


def write_html(suite: SuiteResult, path: Path) -> None:
    verdict = "passed" if suite.passed else "FAILED"
    body = [
        f"<h1>Resilience score {suite.score.value:.1f} ({verdict}, minimum {suite.min_score:g})</h1>",
        f"<p>Suite score = <code>{html.escape(suite.score.formula)}</code> (weighted mean of experiment scores; "
        "an experiment scores the weighted share of its checks that passed, unknown counts as not passed).</p>",
        f"<p>Run <code>{html.escape(suite.run_id)}</code> on the {html.escape(suite.cluster)} cluster "
        f"(Kubernetes {html.escape(suite.kubernetes_version)}), "
        f"{iso(suite.started_at)} to {iso(suite.ended_at)}.</p>",
    ]
    if suite.baseline is not None:
        body.append("<p>" + "<br>".join(html.escape(line) for line in describe(suite.baseline)) + "</p>")
    body += [_experiment(r) for r in suite.experiments]
    path.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>Resilience report {html.escape(suite.run_id)}"
        f"</title><style>{_STYLE}</style></head><body>{''.join(body)}</body></html>",
        encoding="utf-8",
    )
