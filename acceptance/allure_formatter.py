"""allure-behave's formatter, writing into the run's reports folder.

behave.ini names one outfile for it, `reports/allure-results`; a run given another folder
(`-D reports_dir=DIR`: a parallel worker, a shard, the re-run of failures) writes to DIR/allure-results,
beside its JUnit files and records, so runs never mix their results.
"""

from __future__ import annotations

from allure_behave.formatter import AllureFormatter as _AllureFormatter
from behave.configuration import Configuration
from behave.formatter.base import StreamOpener

from acceptance.hooks import REPO_ROOT, REPORTS_OPTION


class AllureFormatter(_AllureFormatter):
    def __init__(self, stream_opener: StreamOpener, config: Configuration) -> None:
        folder = config.userdata.get(REPORTS_OPTION)
        if folder:
            stream_opener = StreamOpener(filename=str(REPO_ROOT / folder / "allure-results"))
        super().__init__(stream_opener, config)
