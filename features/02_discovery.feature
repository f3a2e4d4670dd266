@allure.epic:Service_communication @contract.trading
Feature: Discovery through the Redis registry
  Services register themselves in Redis and find each other there; the registry stays true when
  instances come, go, die, or when Redis itself loses its data.

  Background:
    Given the services heartbeat every third of a registry TTL of 3000 ms

  @blocker
  Scenario: Every service is registered with a routable endpoint, its instance id and the release version
    Then every service is registered under the instance id it was started with, at a routable endpoint, with the release version

  @blocker
  Scenario: A registration outlives its TTL while the instance heartbeats
    Then every service stays registered for two registry TTLs, its heartbeat renewed

  @blocker
  Scenario: The trading engine resolves the risk monitor through the registry
    When the trading engine receives an order for 1 BTC-USD at 100
    Then the order is ACCEPTED
    And the order was decided by a "risk-monitor" instance the stack started
    And the trading engine finds "risk-monitor" at its registered endpoint, from the registry

  @normal
  Scenario: Callers do not read the registry for every call
    Given the registry lookups are counted
    When the trading engine receives 50 orders for 1 BTC-USD at 100
    Then every order is ACCEPTED
    And the registry served fewer than 50 lookups meanwhile

  @critical @needs.scale
  Scenario: Two risk monitor instances both receive traffic
    Given 2 instances of "risk-monitor" are running
    When the trading engine receives 20 orders for 1 BTC-USD at 100
    Then every order is ACCEPTED
    And every "risk-monitor" instance decided at least one of them

  @critical @needs.scale @needs.stop
  Scenario: A gracefully stopped instance is deregistered at once
    Given 2 instances of "risk-monitor" are running
    When instance 2 of "risk-monitor" is stopped gracefully
    Then that instance is deregistered, not left to expire
    And the trading engine receives 10 orders for 1 BTC-USD at 100 and every one is ACCEPTED

  @critical @needs.scale @needs.kill
  Scenario: A killed instance disappears within the registry TTL and its callers move on
    Given 2 instances of "risk-monitor" are running
    When instance 2 of "risk-monitor" is killed
    Then that instance leaves the registry within the registry TTL
    And within one heartbeat the trading engine no longer lists that "risk-monitor" instance
    And the trading engine receives 10 orders for 1 BTC-USD at 100 and every one is ACCEPTED

  @critical @needs.restart
  Scenario: A restarted instance is found again under its new identity
    When "risk-monitor" is restarted
    Then within one heartbeat the trading engine's orders are decided by the new "risk-monitor" instance
    And the trading engine receives 5 orders for 1 BTC-USD at 100 and every one is ACCEPTED

  @critical @needs.redis
  Scenario: The registry is repaired after a Redis flush
    When the registry's Redis is flushed
    Then every service is registered again within one heartbeat
    And the configuration service serves its seeded limits again

  @critical @needs.redis
  Scenario: The registry is repaired after Redis was down for longer than a heartbeat
    When the registry's Redis is down for 2 heartbeats and comes back
    Then every service is registered again within one heartbeat
    And the configuration service serves its seeded limits again

  @critical @needs.redis
  Scenario: While Redis is down callers keep working on the last known endpoints
    Given the trading engine has accepted an order for 1 BTC-USD at 100
    When the registry's Redis is stopped
    Then the trading engine finds "risk-monitor" from its cache
    And the trading engine receives 5 orders for 1 BTC-USD at 100 and every one is ACCEPTED
