"""The behave runner the suite names in behave.ini: behave's own, except that a dry run lists the rows of
@manifest.examples outlines too.

In a run, `before_all` (environment.py) gives those outlines their rows from the manifest; behave runs no hook in a
dry run, so without this `behave --dry-run` would list the outlines of features/01_health.feature with no row.
"""

from __future__ import annotations

from behave.exception import ConfigError
from behave.model import Feature
from behave.runner import Runner

from acceptance.applicability import fill_manifest_examples
from acceptance.manifest import load_manifest


class ManifestRunner(Runner):
    def run_model(self, features: list[Feature] | None = None) -> bool:
        if self.config.dry_run:
            try:
                fill_manifest_examples(
                    self.features if features is None else features,
                    load_manifest(self.config.userdata.get("manifest")),
                )
            except ValueError as exc:  # a manifest that cannot be read, a table it cannot fill: one line, no traceback
                raise ConfigError(str(exc)) from None
        return super().run_model(features)
