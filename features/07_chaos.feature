@allure.epic:Chaos @contract.trading
Feature: Faults injected through the test coordinator
  test-coordinator is the chaos control plane: the target service applies a fault while its event
  is active, acknowledges it, and removes it when its duration ends or the event is ended early.

  @critical @needs.chaos
  Scenario: Latency injection shows in latencies and then recovers
    When the test coordinator injects 300 ms of latency into "risk-monitor" for 2000 ms
    Then the chaos event becomes INJECTED
    And an order for 1 BTC-USD at 100 takes the risk monitor at least 300 ms
    And the chaos event becomes RECOVERED with a recovery time
    And an order for 1 BTC-USD at 100 takes the risk monitor less than 300 ms

  @critical @needs.chaos
  Scenario: Error injection at a percentage shows in the outcomes
    Given the test coordinator injects INTERNAL errors at 50 percent into "risk-monitor" for 60000 ms
    And the chaos event becomes INJECTED
    When the trading engine receives 200 orders for 1 BTC-USD at 100
    Then between 25 and 75 percent of them fail with INTERNAL
    And the others are ACCEPTED

  @critical @needs.chaos
  Scenario: An event ended early is RECOVERED at once and its fault is gone
    Given the test coordinator injects 300 ms of latency into "risk-monitor" for 60000 ms
    And the chaos event becomes INJECTED
    When the chaos event is ended early
    Then the chaos event becomes RECOVERED
    And an order for 1 BTC-USD at 100 takes the risk monitor less than 300 ms

  @critical @needs.chaos
  Scenario: A fault injected into the coordinator spares its chaos control plane
    Given the test coordinator injects UNAVAILABLE errors at 100 percent into "test-coordinator" for 60000 ms
    When the chaos event becomes INJECTED
    Then a test scenario cannot be started while the fault is active
    When the chaos event is ended early
    Then the chaos event becomes RECOVERED

  @normal
  Scenario: A fault the coordinator cannot apply in-process is refused
    When the test coordinator is asked to inject "CPU_STRESS" into "risk-monitor"
    Then the call fails with UNIMPLEMENTED

  @normal
  Scenario: A chaos event for an unknown service is refused
    When the test coordinator is asked to inject "NETWORK_LATENCY" into "no-such-service"
    Then the call fails with INVALID_ARGUMENT
    And the error message contains "no-such-service"
