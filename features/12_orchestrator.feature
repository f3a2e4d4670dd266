@allure.epic:Service_communication @contract.trading
Feature: An orchestrator replaces a killed instance, and callers find the new one through the registry
  Under an orchestrator (TARGET=swarm) every service is a replicated service whose restart policy
  replaces a task that fails: a killed instance comes back as a new instance, with a new identity (and
  usually a new address), which registers itself; callers find it through the registry. The suite kills, then
  only watches.

  Background:
    Given the services heartbeat every third of a registry TTL of 3000 ms
    And the orchestrator replaces a failed task after a restart delay of 1000 ms

  @critical @needs.orchestrator
  Scenario: A killed task replaced by the orchestrator re-registers and takes traffic without a suite action
    When the "risk-monitor" instance is killed and left to the orchestrator
    Then that instance leaves the registry within the registry TTL
    And the orchestrator starts a new "risk-monitor" instance, which registers itself
    And within one heartbeat the trading engine's orders are decided by the new "risk-monitor" instance
    And the trading engine receives 10 orders for 1 BTC-USD at 100 and every one is ACCEPTED
    And every one of them was decided by the new "risk-monitor" instance
