@allure.epic:Service_communication @contract.trading
Feature: Orders travel from the trading engine to the risk monitor
  trading-system-engine asks risk-monitor for a decision on every order, under limits that come
  from configuration-service, and reports each outcome to the test scenarios that are active.

  Background:
    Given the testing limits are
      | key                               | value                           |
      | risk.max_order_quantity           | 1000                            |
      | risk.position_limits.max_notional | 1000000                         |
      | risk.allowed_symbols              | ["BTC-USD","ETH-USD","SOL-USD"] |

  @blocker
  Scenario Outline: An order for <quantity> at <price> within the limits is accepted
    When the trading engine receives an order for <quantity> BTC-USD at <price>
    Then the order is ACCEPTED

    Examples: at the limits, quantity 1000 and notional 1000000
      | quantity | price |
      | 1        | 100   |
      | 1000     | 1000  |

  @blocker
  Scenario Outline: An order for <quantity> at <price> over a limit is rejected for <limit>
    When the trading engine receives an order for <quantity> BTC-USD at <price>
    Then the order is REJECTED
    And the reasons mention "<limit>"

    Examples:
      | quantity | price | limit                             |
      | 1001     | 1     | risk.max_order_quantity           |
      | 20       | 50001 | risk.position_limits.max_notional |
      | 2000     | 1000  | risk.position_limits.max_notional |

  @critical
  Scenario: An order for a symbol outside the allowed list is rejected
    When the trading engine receives an order for 1 DOGE-USD at 1
    Then the order is REJECTED
    And the reasons mention "risk.allowed_symbols"

  @critical
  Scenario: A malformed order is INVALID_ARGUMENT naming the field
    When the trading engine receives an order for -5 BTC-USD at 100
    Then the call fails with INVALID_ARGUMENT
    And the error message contains "quantity"

  @critical
  Scenario: The test coordinator records the outcomes of an active scenario
    Given a test scenario "order-flow" is active and the trading engine knows it
    When the trading engine receives an order for 1 BTC-USD at 100
    And the trading engine receives an order for 5000 BTC-USD at 100
    Then the test coordinator recorded 1 ACCEPTED and 1 REJECTED outcome for the scenario
