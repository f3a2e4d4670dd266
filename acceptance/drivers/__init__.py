"""Domain drivers: what the steps do to the stack and what they expect of it, one module per domain.

Each driver acts through the `Suite` it belongs to (its stack, declared values, scenario state, waits
and restores), so a step is one line that names the domain and the action.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from acceptance.scenario import ScenarioState
    from acceptance.suite import Suite


class Driver:
    def __init__(self, suite: Suite) -> None:
        self._suite = suite

    @property
    def state(self) -> ScenarioState:
        return self._suite.scenario
