"""Orders through the trading engine, its view of the services it depends on, and the test scenarios
the test coordinator records outcomes for."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hamcrest import assert_that, contains_string, equal_to, greater_than_or_equal_to, has_item, less_than

from acceptance.declared import REACTION_MARGIN_S
from acceptance.drivers import Driver
from acceptance.rpc import RpcResult
from ecosystem.names import RISK_MONITOR, TEST_COORDINATOR, TRADING_SYSTEM_ENGINE

STRATEGY = "acceptance"
# The engine's resolver notices an unreachable registry on its next read: a watch round trip.
REGISTRY_READ_TIMEOUT_S = 5.0
# Reports to the test coordinator travel on the control-plane stream: within a round trip.
CONTROL_PLANE_S = 5.0


def order(quantity: float, symbol: str, price: float) -> dict[str, Any]:
    return {"strategy_id": STRATEGY, "symbol": symbol, "side": "SIDE_BUY", "quantity": quantity, "price": price}


def outcome(result: RpcResult) -> str:
    """ACCEPTED / REJECTED for a decided order, else the status code of the failed call."""
    return result.body.get("status", "?") if result.ok else result.code.name


class Orders(Driver):
    # --- acting ------------------------------------------------------------------------------

    def submit(self, quantity: float, symbol: str, price: float, *, timeout_s: float | None = None) -> RpcResult:
        result = self._send(quantity, symbol, price, timeout_s)
        self.state.batch = [result]
        return result

    def submit_many(self, count: int, quantity: float, symbol: str, price: float) -> None:
        self.state.batch = [self._send(quantity, symbol, price) for _ in range(count)]

    def submit_at_once(self, count: int, quantity: float, symbol: str, price: float) -> None:
        """`count` orders sent concurrently, each on a thread of its own."""
        with ThreadPoolExecutor(max_workers=count, thread_name_prefix="order") as pool:
            self.state.batch = list(pool.map(lambda _: self._send(quantity, symbol, price), range(count)))

    def submit_until_in_flight_at(self, service: str, quantity: float, symbol: str, price: float) -> None:
        """Send an order and go on once `service` counts its check in flight; `expect_in_flight_outcome` collects it."""
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="order-in-flight")
        self.state.in_flight = pool.submit(self._send, quantity, symbol, price)
        pool.shutdown(wait=False)
        self._suite.calls.expect_in_flight(service, "CheckOrder")

    def _send(self, quantity: float, symbol: str, price: float, timeout_s: float | None = None) -> RpcResult:
        options = {} if timeout_s is None else {"timeout": timeout_s}
        result = self._suite.call(TRADING_SYSTEM_ENGINE, "SubmitOrder", order(quantity, symbol, price), **options)
        self.state.orders_sent.append(result)
        return result

    def has_accepted(self, quantity: float, symbol: str, price: float) -> None:
        self.submit(quantity, symbol, price)
        self.expect_status("ACCEPTED")

    # --- expecting of orders -----------------------------------------------------------------

    def expect_status(self, status: str) -> None:
        result = self.state.last_call()
        assert result.ok, f"expected an order {status}, but {result.describe()}"
        assert_that(outcome(result), equal_to(status), f"order reasons: {result.body.get('reasons')}")

    def expect_reasons_mention(self, text: str) -> None:
        reasons = self.state.last_call().body.get("reasons", [])
        assert_that(reasons, has_item(contains_string(text)), "the order's reasons")

    def expect_every(self, status: str) -> None:
        outcomes = [outcome(result) for result in self.state.batch]
        assert outcomes, "no order was sent in this scenario before this step"
        first_odd = self._first_odd(status)
        assert_that(set(outcomes), equal_to({status}), f"outcomes: {outcomes}; the first other one: {first_odd}")

    def expect_share_failing(self, low: int, high: int, code: str) -> None:
        batch = self.state.batch
        failed = sum(1 for result in batch if not result.ok and result.code.name == code)
        share = 100 * failed / len(batch)
        assert low <= share <= high, f"{failed} of {len(batch)} orders failed with {code} ({share:.0f}%)"

    def expect_others_accepted(self) -> None:
        code = self.state.injected_failure_code
        unexpected = [
            result.describe() for result in self.state.batch
            if outcome(result) != "ACCEPTED" and (result.ok or result.code.name != code)
        ]
        assert not unexpected, f"orders neither ACCEPTED nor failed with the injected {code}: {unexpected[:5]}"

    def expect_eventually(
        self, seconds: float, quantity: float, symbol: str, price: float, status: str, reason: str = ""
    ) -> None:
        def decided(result: RpcResult) -> bool:
            reasons = result.body.get("reasons", []) if result.ok else []
            return outcome(result) == status and (not reason or any(reason in r for r in reasons))

        self._suite.wait(
            lambda: self.submit(quantity, symbol, price),
            decided,
            timeout=seconds,
            what=f"an order for {quantity:g} {symbol} at {price:g} is {status}" + (f" for {reason}" if reason else ""),
            interval=0.1,
        )

    def expect_decision(self, quantity: float, symbol: str, price: float, status: str, reason: str) -> None:
        self.submit(quantity, symbol, price)
        self.expect_status(status)
        self.expect_reasons_mention(reason)

    def expect_eventually_after_breaker_recovery(self, quantity: float, symbol: str, price: float, status: str) -> None:
        """Within the breaker's declared recovery timeout, plus one registry TTL for the service to be found again."""
        declared = self._suite.declared
        bound = declared.timings.breaker_recovery_timeout_s + declared.registry_ttl_s + REACTION_MARGIN_S
        self.expect_eventually(bound, quantity, symbol, price, status)

    def expect_in_flight_outcome(self, status: str) -> None:
        future = self.state.in_flight
        assert future is not None, "no order was in flight in this scenario before this step"
        result = future.result(timeout=self._suite.declared.timings.shutdown_grace_s + REACTION_MARGIN_S)
        assert_that(outcome(result), equal_to(status), f"the order that was in flight: {result.describe()}")

    def expect_each_instance_decided(self, service: str) -> None:
        deciders = {result.body.get("risk_instance_id") for result in self.state.batch if result.ok}
        for handle in self._suite.stack.instances(service):
            assert_that(deciders, has_item(handle.instance_id), f"instances of {service} that decided an order")

    def expect_decided_by_running(self, service: str) -> None:
        """The last order was decided by an instance the target started, under the id it started it with."""
        decider = self.state.last_call().body.get("risk_instance_id", "")
        started = [handle.instance_id for handle in self._suite.stack.instances(service)]
        assert_that(started, has_item(decider), f"the order was decided by {service} instance {decider!r}")

    def expect_decided_by_restarted(self, service: str) -> None:
        restarted = self.state.restarted
        assert restarted is not None, f"no instance of {service} was restarted in this scenario"
        declared = self._suite.declared
        self._suite.wait(
            lambda: self.submit(1, "BTC-USD", 100),
            lambda result: result.ok and result.body.get("risk_instance_id") == restarted.instance_id,
            timeout=declared.heartbeat_s + REACTION_MARGIN_S,
            what=f"an order is decided by the restarted {service} instance {restarted.instance_id}",
        )

    # --- the engine's view of its dependencies -----------------------------------------------

    def dependency(self, service: str) -> dict[str, Any]:
        status = self._suite.ok(self._suite.call(TRADING_SYSTEM_ENGINE, "GetStatus"))
        for dependency in status.get("dependencies", []):
            if dependency.get("service") == service:
                return dependency
        raise AssertionError(f"trading-system-engine's GetStatus does not list {service}: {status}")

    def expect_finds_at_registered_endpoint(self, service: str) -> None:
        dependency = self.dependency(service)
        registered = sorted(entry.endpoint for entry in self._suite.registry.entries(service))
        assert_that(dependency["source"], equal_to("registry"), f"where the engine found {service}")
        assert_that(sorted(dependency["endpoints"]), equal_to(registered), f"endpoints the engine uses for {service}")

    def expect_finds_from_cache(self, service: str) -> None:
        self._suite.wait(
            lambda: self.dependency(service)["source"],
            lambda source: source == "cache",
            timeout=REGISTRY_READ_TIMEOUT_S,
            what=f"trading-system-engine reports {service} found from its cache while Redis is down",
        )

    def expect_knows_running(self, service: str) -> None:
        """The engine uses exactly the registered endpoints of the instances the target runs."""
        running = {handle.instance_id for handle in self._suite.stack.instances(service)}

        def wanted() -> set[str]:
            return {e.endpoint for e in self._suite.registry.entries(service) if e.instance_id in running}

        self._suite.wait(
            lambda: (set(self.dependency(service)["endpoints"]), wanted()),
            lambda seen: seen[0] == seen[1] and len(seen[1]) == len(running),
            timeout=self._suite.declared.heartbeat_s + REACTION_MARGIN_S,
            what=f"{TRADING_SYSTEM_ENGINE} knows all {len(running)} running instances of {service}",
        )

    def expect_forgets_removed(self, service: str) -> None:
        entry = self.state.removed_entry
        assert entry is not None, f"no instance of {service} was removed in this scenario"
        self._suite.wait(
            lambda: self.dependency(service)["endpoints"],
            lambda endpoints: entry.endpoint not in endpoints,
            timeout=self._suite.declared.heartbeat_s + REACTION_MARGIN_S,
            what=f"{TRADING_SYSTEM_ENGINE} no longer lists {service} instance {entry.instance_id} at {entry.endpoint}",
        )

    def expect_breaker(self, service: str, state: str) -> None:
        breaker = self.dependency(service)["breaker"]
        assert_that(breaker["state"], equal_to(state), f"breaker of trading-system-engine for {service}: {breaker}")

    def expect_breaker_closed_after_probes(self, service: str, probes: int) -> None:
        breaker = self.dependency(service)["breaker"]
        assert_that(breaker["state"], equal_to("CLOSED"), str(breaker))
        assert_that(int(breaker["half_opened_count"]), greater_than_or_equal_to(probes), str(breaker))

    def expect_saw(self, code: str, service: str) -> None:
        last_error = self.dependency(service)["last_error"]
        assert_that(last_error, contains_string(code), f"the engine's last error from {service}")

    def expect_risk_latency(self, quantity: float, symbol: str, price: float, *, at_least_ms: int = 0,
                            below_ms: int = 0) -> None:
        """An accepted order's risk-monitor latency as the engine measured it, against a bound."""
        self.submit(quantity, symbol, price)
        self.expect_status("ACCEPTED")
        latency = self.dependency(RISK_MONITOR)["last_latency_ms"]
        if at_least_ms:
            assert_that(latency, greater_than_or_equal_to(at_least_ms), "risk-monitor latency seen by the engine")
        if below_ms:
            assert_that(latency, less_than(below_ms), "risk-monitor latency seen by the engine")

    def expect_ended_before_injected_latency(self) -> None:
        elapsed_ms = self.state.last_call().elapsed_s * 1000
        assert_that(elapsed_ms, less_than(self.state.injected_latency_ms), "how long the order took (ms)")

    # --- test scenarios ----------------------------------------------------------------------

    def start_test_scenario(self, name: str) -> None:
        scenario = self._suite.ok(self._suite.call(TEST_COORDINATOR, "StartScenario", {"name": name}))
        scenario_id = self.state.test_scenario_id = scenario["scenario_id"]
        self._suite.on_restore(f"complete test scenario {scenario_id}", lambda: self._complete(scenario_id))
        self._suite.wait(
            lambda: self._suite.ok(self._suite.call(TRADING_SYSTEM_ENGINE, "GetStatus"))["active_scenarios"],
            lambda active: scenario_id in active,
            timeout=CONTROL_PLANE_S,
            what=f"{TRADING_SYSTEM_ENGINE} lists test scenario {scenario_id} as active",
        )

    def expect_outcomes_recorded(self, accepted: int, rejected: int) -> None:
        scenario_id = self.state.test_scenario_id
        scenario = self._suite.ok(self._suite.call(TEST_COORDINATOR, "GetScenario", {"scenario_id": scenario_id}))
        counts = {key: int(value) for key, value in scenario.get("outcome_counts", {}).items()}
        assert_that(counts, equal_to({"ACCEPTED": accepted, "REJECTED": rejected}), "outcomes the coordinator counted")
        sent = {result.body["order_id"] for result in self.state.orders_sent if result.ok}
        assert_that({o["order_id"] for o in scenario.get("outcomes", [])}, equal_to(sent), "orders recorded")

    def expect_test_scenario_refused(self) -> None:
        result = self._suite.call(TEST_COORDINATOR, "StartScenario", {"name": "refused"})
        if result.ok:
            scenario_id = result.body["scenario_id"]
            self._suite.on_restore(f"complete test scenario {scenario_id}", lambda: self._complete(scenario_id))
            raise AssertionError(f"the test coordinator started a scenario while faulted at 100%: {result.body}")

    def _complete(self, scenario_id: str) -> None:
        result = self._suite.call(TEST_COORDINATOR, "CompleteScenario", {"scenario_id": scenario_id})
        if not result.ok and result.code.name != "FAILED_PRECONDITION":  # already completed is fine
            raise AssertionError(f"could not complete test scenario {scenario_id}: {result.describe()}")

    def _first_odd(self, status: str) -> str:
        odd = [result.describe() for result in self.state.batch if outcome(result) != status]
        return odd[0] if odd else "none"
