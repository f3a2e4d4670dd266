"""allure-behave's formatter with the suite's report conventions, writing into the run's reports folder.

- Where: behave.ini names one outfile, `reports/allure-results`; a run given another folder (`-D reports_dir=DIR`:
  a parallel worker, a shard, the re-run of failures) writes to DIR/allure-results, beside its JUnit files and
  records, so runs never mix their results.
- Links: `@allure.issue:<id>` and `@allure.tms:<id>` link to the patterns `AllureFormatter.issue_pattern` and
  `AllureFormatter.tms_pattern` (`{}` is the id) of behave's userdata (behave.ini's [behave.userdata] or `-D`), else
  of ALLURE_ISSUE_PATTERN / ALLURE_TMS_PATTERN; issues default to the CI's repository (acceptance/ci_environment.py).
  allure-behave itself knows no TMS pattern. A tag that no pattern resolves is reported once, naming the setting.
- Names: epic, story and suite labels read with spaces: a tag cannot hold one, so
  `@allure.epic:Service_communication` is shown as "Service communication".
- A dry run (`behave --dry-run`) writes no Allure results and no JUnit files: the last run's reports stay as they were.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import allure_commons
from allure_behave.formatter import AllureFormatter as _AllureFormatter
from allure_commons import hookimpl
from allure_commons.logger import AllureFileLogger
from allure_commons.model2 import TestResult
from behave.configuration import Configuration
from behave.formatter.base import Formatter, StreamOpener
from behave.reporter.junit import JUnitReporter

from acceptance import ci_environment
from acceptance.hooks import REPO_ROOT, REPORTS_OPTION

# Allure's link types that take a pattern, and where each pattern may come from.
LINK_PATTERNS = {
    "issue": ("AllureFormatter.issue_pattern", "ALLURE_ISSUE_PATTERN"),
    "tms": ("AllureFormatter.tms_pattern", "ALLURE_TMS_PATTERN"),
}
# Labels given as tags; not the feature label, which is the Feature's name as written (the report matches it with
# behave's own results, acceptance/allure_report.py).
SPACED_LABELS = frozenset({"epic", "story", "parentSuite", "suite", "subSuite"})


def link_patterns(userdata: dict[str, str], env: dict[str, str]) -> dict[str, str]:
    """Link type -> pattern with `{}` for the id, for the types that have one."""
    ci = ci_environment.detect(env)
    defaults = {"issue": ci.issue_pattern() if ci else ""}
    patterns = {
        kind: userdata.get(option) or env.get(variable) or defaults.get(kind, "")
        for kind, (option, variable) in LINK_PATTERNS.items()
    }
    return {kind: pattern for kind, pattern in patterns.items() if pattern}


class ConventionalFileLogger(AllureFileLogger):
    """Writes each result with its links resolved and its labels spaced."""

    def __init__(self, report_dir: str, patterns: dict[str, str]) -> None:
        super().__init__(report_dir)
        self._patterns = patterns
        self._unresolved: set[str] = set()

    @hookimpl
    def report_result(self, result: TestResult) -> None:
        for label in result.labels:
            if label.name in SPACED_LABELS and isinstance(label.value, str):
                label.value = label.value.replace("_", " ")
        for link in result.links:
            self._resolve(link, result.fullName or result.name)
        super().report_result(result)

    def _resolve(self, link: Any, scenario: str) -> None:
        if link.type not in LINK_PATTERNS or "://" in link.url:
            return
        pattern = self._patterns.get(link.type)
        if pattern:
            link.url = pattern.format(link.url)
        elif link.type not in self._unresolved:
            self._unresolved.add(link.type)
            option, variable = LINK_PATTERNS[link.type]
            print(f"allure: @allure.{link.type}:{link.url} of {scenario!r} links nowhere: set {option} in behave.ini's "
                  f"[behave.userdata] or {variable}", file=sys.stderr)


class AllureFormatter(_AllureFormatter):
    def __new__(cls, stream_opener: StreamOpener, config: Configuration) -> _AllureFormatter | DryRunFormatter:
        # behave builds the class behave.ini names; allure-behave's __init__ makes the results folder and registers
        # its plugins, so a dry run must be another object before that runs (Python then skips this __init__).
        if config.dry_run:
            return DryRunFormatter(stream_opener, config)
        return super().__new__(cls)

    def __init__(self, stream_opener: StreamOpener, config: Configuration) -> None:
        folder = config.userdata.get(REPORTS_OPTION)
        if folder:
            stream_opener = StreamOpener(filename=str(REPO_ROOT / folder / "allure-results"))
        super().__init__(stream_opener, config)
        # Patterns are applied below for issues and TMS alike, the link keeping the id as its name.
        self.listener.issue_pattern = None
        allure_commons.plugin_manager.unregister(self.file_logger)
        self.file_logger = ConventionalFileLogger(
            self.stream_opener.name, link_patterns(dict(config.userdata), dict(os.environ))
        )
        allure_commons.plugin_manager.register(self.file_logger)


class DryRunFormatter(Formatter):
    """What a dry run gets instead: no Allure results, and behave's JUnit reporter (made with the configuration,
    before any formatter) taken out."""

    def __init__(self, stream_opener: StreamOpener, config: Configuration) -> None:
        config.reporters = [reporter for reporter in config.reporters if not isinstance(reporter, JUnitReporter)]
        super().__init__(stream_opener, config)
