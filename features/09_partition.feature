@allure.epic:Service_communication @contract.trading
Feature: A risk monitor cut off from the network is failed fast around, and used again once reconnected
  Only a real network can be cut: the risk monitor's process keeps running, but neither the trading
  engine nor Redis can reach it, so its registry entry expires and calls to it fail at transport level.

  Background:
    Given the services heartbeat every third of a registry TTL of 3000 ms
    And the trading engine's breaker opens after 5 consecutive transport failures and probes again after 2 seconds

  @blocker @needs.partition
  Scenario: The breaker opens while the risk monitor is partitioned and closes once it is reconnected
    Given the "risk-monitor" instance is cut off from the network
    Then that instance leaves the registry within the registry TTL
    And within one heartbeat the trading engine no longer lists that "risk-monitor" instance
    When the trading engine receives 5 orders for 1 BTC-USD at 100
    Then every one of them fails with UNAVAILABLE
    And the trading engine's breaker for "risk-monitor" is OPEN
    When the trading engine receives an order for 1 BTC-USD at 100
    Then the call fails with UNAVAILABLE
    And the error message contains "circuit breaker for risk-monitor is OPEN"
    When the "risk-monitor" instance is connected to the network again
    Then within the breaker's recovery time an order for 1 BTC-USD at 100 is ACCEPTED
    And the trading engine's breaker for "risk-monitor" is CLOSED after at least 1 half-open probe
