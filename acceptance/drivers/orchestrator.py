"""An orchestrator that replaces a failed instance by itself: the suite kills, then only watches the stack."""

from __future__ import annotations

from hamcrest import assert_that, equal_to, is_not

from acceptance.declared import REACTION_MARGIN_S
from acceptance.drivers import Driver
from acceptance.drivers.orders import outcome
from acceptance.targets import ServiceHandle

# ScenarioState.noted: Redis time (ms) when the scenario killed the instance; what registered later is new.
KILLED_AT_MS = "orchestrator: killed at (Redis time, ms)"


class Orchestrator(Driver):
    def kill_and_leave(self, service: str) -> None:
        """SIGKILL to the first instance, noted with the registry's time; nothing else is done to the stack."""
        seconds, micros = self._suite.redis.time()
        self.state.noted[KILLED_AT_MS] = seconds * 1000 + micros // 1000
        self._suite.faults.kill_instance(1, service)

    def expect_replacement(self, service: str) -> None:
        """The target runs an instance of `service`, another than the killed one, that first registered after the kill:
        within the declared restart delay plus the time the target allows an instance to start. Its address may be
        the killed one's (swarm may give a new task a freed address); its identity may not."""
        removed = self.state.removed
        assert removed is not None, f"no registered {service} instance was killed"
        killed_at_ms = self.state.noted[KILLED_AT_MS]
        bound = self._suite.declared.timings.restart_delay_ms / 1000 + self._suite.stack.start_timeout
        bound += REACTION_MARGIN_S

        def started_since() -> list[ServiceHandle]:
            registered = {entry.instance_id: entry for entry in self._suite.registry.entries(service)}
            return [
                handle
                for handle in self._suite.stack.instances(service)
                if handle.instance_id in registered and registered[handle.instance_id].started_at_ms >= killed_at_ms
            ]

        replacements = self._suite.wait(
            started_since, bool, timeout=bound,
            what=f"the orchestrator runs a new {service} instance, registered after {removed.instance_id} was killed",
            interval=0.1,
        )
        handle = replacements[0]
        assert_that(handle.instance_id, is_not(equal_to(removed.instance_id)), f"the instance id of the new {service}")
        self.state.restarted = handle

    def expect_batch_decided_by_replacement(self, service: str) -> None:
        """Every order of the last batch was decided by the instance the orchestrator started."""
        replacement = self.state.restarted
        assert replacement is not None, f"no new {service} instance was seen in this scenario"
        assert self.state.batch, "no order was sent in this scenario before this step"
        deciders = {result.body.get("risk_instance_id") for result in self.state.batch}
        outcomes = [outcome(result) for result in self.state.batch]
        assert_that(deciders, equal_to({replacement.instance_id}),
                    f"the {service} instances that decided the orders (outcomes: {outcomes})")
