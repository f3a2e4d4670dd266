"""Which CI system runs the suite, read from the variables it sets: for Allure's executor and default issue links.

    ci = detect(os.environ)       # None on a developer's machine
    ci.executor(...)              # executor.json: "GitHub Actions", its run's URL, build number and name

GitHub Actions, GitLab CI and Jenkins are known by their own variables; any other system that sets CI=true is a
plain "CI" with no URLs. ALLURE_REPORT_URL, where set, is where the team publishes the HTML report: a CI machine's
own file:// path would be of no use to anyone reading the report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

TRUTHY = frozenset({"1", "true", "yes"})


@dataclass(frozen=True)
class CiSystem:
    name: str
    type: str  # Allure's executor type: its icon and wording
    url: str = ""  # the project on the CI system
    build_order: int | None = None
    build_name: str = ""
    build_url: str = ""
    issues_url: str = ""  # the project's issue tracker, for @allure.issue:<id> without a pattern

    def executor(self, env: Mapping[str, str]) -> dict[str, object]:
        fields = {
            "name": self.name,
            "type": self.type,
            "url": self.url,
            "buildOrder": self.build_order,
            "buildName": self.build_name,
            "buildUrl": self.build_url,
            "reportUrl": env.get("ALLURE_REPORT_URL", ""),
        }
        return {key: value for key, value in fields.items() if value not in ("", None)}

    def issue_pattern(self) -> str:
        return f"{self.issues_url}/{{}}" if self.issues_url else ""


def detect(env: Mapping[str, str]) -> CiSystem | None:
    """The CI system whose variables `env` holds, or None outside CI."""
    if env.get("GITHUB_ACTIONS") == "true":
        project = f"{env.get('GITHUB_SERVER_URL', 'https://github.com')}/{env.get('GITHUB_REPOSITORY', '')}"
        number = env.get("GITHUB_RUN_NUMBER", "")
        return CiSystem(
            name="GitHub Actions", type="github", url=project, build_order=_number(number),
            build_name=f"{env.get('GITHUB_WORKFLOW', 'workflow')} #{number} ({env.get('GITHUB_JOB', 'job')})",
            build_url=f"{project}/actions/runs/{env.get('GITHUB_RUN_ID', '')}", issues_url=f"{project}/issues",
        )
    if env.get("GITLAB_CI") == "true":
        project = env.get("CI_PROJECT_URL", "")
        number = env.get("CI_PIPELINE_IID", "")
        return CiSystem(
            name="GitLab CI", type="gitlab", url=project, build_order=_number(number),
            build_name=f"pipeline #{number} ({env.get('CI_JOB_NAME', 'job')})", build_url=env.get("CI_JOB_URL", ""),
            issues_url=f"{project}/-/issues" if project else "",
        )
    if env.get("JENKINS_URL"):
        number = env.get("BUILD_NUMBER", "")
        return CiSystem(
            name="Jenkins", type="jenkins", url=env.get("JENKINS_URL", ""), build_order=_number(number),
            build_name=env.get("BUILD_TAG") or f"{env.get('JOB_NAME', 'job')} #{number}",
            build_url=env.get("BUILD_URL", ""),
        )
    if env.get("CI", "").lower() in TRUTHY:
        return CiSystem(name="CI", type="ci", build_name=env.get("CI_NAME", ""))
    return None


def _number(text: str) -> int | None:
    return int(text) if text.isdigit() else None
