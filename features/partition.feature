@allure.epic:Service_communication
Feature: A risk monitor cut off from the network is failed fast around, and used again once reconnected
  Only a real network can be cut: the risk monitor's process keeps running, but neither the trading
  engine nor Redis can reach it, so its registry entry expires and calls to it fail at transport level.

  @blocker @needs.partition
  Scenario: The breaker opens while the risk monitor is partitioned and closes once it is reconnected
    Given the "risk-monitor" instance is cut off from the network
    Then the "risk-monitor" instance leaves the registry within the registry TTL
    And within 5 seconds the trading engine no longer finds "risk-monitor"
    When the trading engine receives 5 orders for 1 BTC-USD at 100
    Then every one of them fails with UNAVAILABLE
    And the trading engine's breaker for "risk-monitor" is OPEN
    When the trading engine receives an order for 1 BTC-USD at 100
    Then the call fails with UNAVAILABLE
    And the error message contains "circuit breaker for risk-monitor is OPEN"
    When the "risk-monitor" instance is connected to the network again
    Then within 20 seconds an order for 1 BTC-USD at 100 is ACCEPTED
    And the trading engine's breaker for "risk-monitor" is CLOSED after at least 1 half-open probe
