@allure.epic:Service_communication @contract.trading
Feature: The trading engine fails fast while the risk monitor is down and recovers by itself
  Calls to another service go through a circuit breaker that counts transport failures only,
  retry UNAVAILABLE only (and skip an instance that does not serve the service at all), and carry
  the caller's remaining deadline.

  Background:
    Given the trading engine's breaker opens after 5 consecutive transport failures and probes again after 2 seconds
    And a call that fails with UNAVAILABLE is tried 3 times

  @blocker @needs.stop
  Scenario: The breaker opens at the threshold and then fails fast with a clear error
    Given every "risk-monitor" instance is stopped
    When the trading engine receives 4 orders for 1 BTC-USD at 100
    Then every one of them fails with UNAVAILABLE
    And the trading engine's breaker for "risk-monitor" is CLOSED
    When the trading engine receives an order for 1 BTC-USD at 100
    Then the trading engine's breaker for "risk-monitor" is OPEN
    When the trading engine receives an order for 1 BTC-USD at 100
    Then the call fails with UNAVAILABLE
    And the error message contains "circuit breaker for risk-monitor is OPEN"

  @blocker @needs.stop
  Scenario: Back up, the breaker lets a probe through and closes
    Given every "risk-monitor" instance is stopped
    And the trading engine receives 5 orders for 1 BTC-USD at 100
    And the trading engine's breaker for "risk-monitor" is OPEN
    When "risk-monitor" is started again
    Then within the breaker's recovery time an order for 1 BTC-USD at 100 is ACCEPTED
    And the trading engine's breaker for "risk-monitor" is CLOSED after at least 1 half-open probe

  @critical @needs.chaos
  Scenario: Business errors do not open the breaker
    Given the test coordinator injects FAILED_PRECONDITION errors at 100 percent into "risk-monitor" for 60000 ms
    And the chaos event becomes INJECTED
    When the trading engine receives 6 orders for 1 BTC-USD at 100
    Then every one of them fails with FAILED_PRECONDITION
    And the trading engine's breaker for "risk-monitor" is CLOSED

  @critical @needs.chaos
  Scenario: UNAVAILABLE is retried on the next attempt
    Given the test coordinator injects UNAVAILABLE errors at 100 percent into "risk-monitor" for 60000 ms
    And the chaos event becomes INJECTED
    And the CheckOrder calls of "risk-monitor" are counted
    When the trading engine receives an order for 1 BTC-USD at 100
    Then the call fails with UNAVAILABLE
    And "risk-monitor" received 3 CheckOrder calls since they were counted

  @critical @needs.chaos
  Scenario: Other errors are not retried
    Given the test coordinator injects INTERNAL errors at 100 percent into "risk-monitor" for 60000 ms
    And the chaos event becomes INJECTED
    And the CheckOrder calls of "risk-monitor" are counted
    When the trading engine receives an order for 1 BTC-USD at 100
    Then the call fails with INTERNAL
    And "risk-monitor" received 1 CheckOrder calls since they were counted

  @critical @needs.chaos
  Scenario: The caller's deadline reaches the risk monitor
    Given the test coordinator injects 3000 ms of latency into "risk-monitor" for 60000 ms
    And the chaos event becomes INJECTED
    When the trading engine receives an order for 1 BTC-USD at 100 with a deadline of 500 ms
    Then the call fails with DEADLINE_EXCEEDED
    And the error message contains "risk-monitor"
    And the call ended before the injected latency was over
    And the trading engine saw DEADLINE_EXCEEDED from "risk-monitor"
