"""Reports of a suite run: summary.json, junit.xml, report.html, and reports/latest."""
