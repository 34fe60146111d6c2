"""``junit.xml``: one test case per check, so CI systems show each verdict.

``fail`` is a failure and ``unknown`` an error: neither may read as passed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from harness.suite import SuiteResult


def write_junit(suite: SuiteResult, path: Path) -> None:
    root = ET.Element("testsuites", name="chaos", tests="0", failures="0", errors="0")
    tests = failures = errors = 0
    for exp in suite.experiments:
        suite_el = ET.SubElement(root, "testsuite", name=exp.name, time=f"{exp.ended_at - exp.started_at:.3f}")
        counts = {"pass": 0, "fail": 0, "unknown": 0}
        if exp.error:
            counts["unknown"] += 1
            case = ET.SubElement(suite_el, "testcase", classname=exp.name, name="run")
            ET.SubElement(case, "error", message=exp.error)
        for check in exp.checks:
            counts[check.verdict] += 1
            case = ET.SubElement(suite_el, "testcase", classname=exp.name, name=check.name)
            text = "\n".join(check.evidence)
            if check.verdict == "fail":
                first = check.evidence[0] if check.evidence else ""
                ET.SubElement(case, "failure", message=f"fail: {first}").text = text
            elif check.verdict == "unknown":
                ET.SubElement(case, "error", message="unknown: the check could not decide").text = text
            else:
                ET.SubElement(case, "system-out").text = text
        n = sum(counts.values())
        suite_el.set("tests", str(n))
        suite_el.set("failures", str(counts["fail"]))
        suite_el.set("errors", str(counts["unknown"]))
        tests, failures, errors = tests + n, failures + counts["fail"], errors + counts["unknown"]
    root.set("tests", str(tests))
    root.set("failures", str(failures))
    root.set("errors", str(errors))
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
