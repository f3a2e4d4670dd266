@allure.epic:Service_communication @contract.trading
Feature: A stopping instance drains
  On SIGTERM a service answers NOT_SERVING at once, leaves the registry, finishes the calls it has
  in flight within its grace period and exits 0, logging each stage.

  Background:
    Given the services drain for up to 2 seconds on SIGTERM

  @critical @needs.stop @needs.chaos
  Scenario: An instance stopped mid-call finishes the call, answers NOT_SERVING meanwhile and exits 0
    Given a health watch on "risk-monitor" is open
    And the test coordinator injects 800 ms of latency into "risk-monitor" for 60000 ms
    And the chaos event becomes INJECTED
    When an order for 1 BTC-USD at 100 is in flight at "risk-monitor"
    And "risk-monitor" is sent SIGTERM
    Then the health watch on "risk-monitor" reports NOT_SERVING
    And that instance is deregistered, not left to expire
    And the order in flight is ACCEPTED
    And "risk-monitor" exits with status 0 within its grace period
    And the log of "risk-monitor" shows stopping, deregistered and stopped, in that order
