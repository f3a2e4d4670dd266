"""The behave runner the suite names in behave.ini: behave's own, except that a dry run lists the rows of
@manifest.examples outlines too.

Those rows are filled in by `before_all` (acceptance/applicability.py), and behave runs no hook in a dry run: without
this, `behave --dry-run` would list the outlines of features/01_health.feature with no row at all.
"""

from __future__ import annotations

from behave.exception import ConfigError
from behave.model import Feature
from behave.runner import Runner

from acceptance.applicability import fill_manifest_examples
from acceptance.manifest import ManifestError, load_manifest


class ManifestRunner(Runner):
    def run_model(self, features: list[Feature] | None = None) -> bool:
        if self.config.dry_run:
            try:
                fill_manifest_examples(self.features, load_manifest(self.config.userdata.get("manifest")))
            except ManifestError as exc:  # behave prints a ConfigError as one line
                raise ConfigError(str(exc)) from None
        return super().run_model(features)
