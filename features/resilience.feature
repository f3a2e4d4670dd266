@allure.epic:Service_communication
Feature: The trading engine fails fast while the risk monitor is down and recovers by itself
  Calls to another service go through a circuit breaker that counts transport failures only and
  retries UNAVAILABLE only.

  @blocker @needs.stop
  Scenario: The breaker opens after the threshold and then fails fast with a clear error
    Given every "risk-monitor" instance is stopped
    When the trading engine receives 5 orders for 1 BTC-USD at 100
    Then every one of them fails with UNAVAILABLE
    And the trading engine's breaker for "risk-monitor" is OPEN
    When the trading engine receives an order for 1 BTC-USD at 100
    Then the call fails with UNAVAILABLE
    And the error message contains "circuit breaker for risk-monitor is OPEN"

  @blocker @needs.stop
  Scenario: Back up, the breaker lets a probe through and closes
    Given every "risk-monitor" instance is stopped
    And the trading engine receives 5 orders for 1 BTC-USD at 100
    And the trading engine's breaker for "risk-monitor" is OPEN
    When "risk-monitor" is started again
    Then within 15 seconds an order for 1 BTC-USD at 100 is ACCEPTED
    And the trading engine's breaker for "risk-monitor" is CLOSED after at least 1 half-open probe

  @critical @needs.chaos
  Scenario: UNAVAILABLE is retried on the next attempt
    Given the test coordinator injects UNAVAILABLE errors at 100 percent into "risk-monitor" for 10000 ms
    And the chaos event becomes INJECTED
    And the CheckOrder calls of "risk-monitor" are counted
    When the trading engine receives an order for 1 BTC-USD at 100
    Then the call fails with UNAVAILABLE
    And "risk-monitor" received 3 CheckOrder calls for it

  @critical @needs.chaos
  Scenario: Other errors are not retried
    Given the test coordinator injects INTERNAL errors at 100 percent into "risk-monitor" for 10000 ms
    And the chaos event becomes INJECTED
    And the CheckOrder calls of "risk-monitor" are counted
    When the trading engine receives an order for 1 BTC-USD at 100
    Then the call fails with INTERNAL
    And "risk-monitor" received 1 CheckOrder call for it
