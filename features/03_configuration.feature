@allure.epic:Service_communication @contract.trading
Feature: Configuration lookup
  configuration-service serves typed values per environment, seeded from config/seed.toml; services
  read their limits through a caching client that follows changes without a restart.

  Background:
    Given the testing limits are
      | key                               | value                           |
      | risk.max_order_quantity           | 1000                            |
      | risk.position_limits.max_notional | 1000000                         |
      | risk.allowed_symbols              | ["BTC-USD","ETH-USD","SOL-USD"] |

  @critical
  Scenario Outline: <key> in <environment> is served as seeded: <value>
    When I get the configuration "<key>" for "<environment>"
    Then the configuration value is <value> of type <type>, as seeded

    Examples:
      | key                               | environment | value                           | type    |
      | risk.max_order_quantity           | testing     | 1000                            | NUMBER  |
      | risk.max_order_quantity           | production  | 100                             | NUMBER  |
      | risk.position_limits.max_notional | testing     | 1000000                         | NUMBER  |
      | risk.allowed_symbols              | development | ["BTC-USD","ETH-USD","SOL-USD"] | JSON    |
      | trading.enabled                   | testing     | true                            | BOOLEAN |
      | trading.venue                     | testing     | SIM                             | STRING  |

  @normal
  Scenario: An unknown key is NOT_FOUND with the key in the message
    When I get the configuration "risk.no_such_limit" for "testing"
    Then the call fails with NOT_FOUND
    And the error message contains "Configuration not found: risk.no_such_limit"

  @normal
  Scenario Outline: A malformed key is INVALID_ARGUMENT naming it: <key>
    When I get the configuration "<key>" for "testing"
    Then the call fails with INVALID_ARGUMENT
    And the error message contains "<key>"

    Examples:
      | key          |
      | 9risk.limit  |
      | risk..limit  |
      | risk.limit-x |

  @normal
  Scenario: A value that does not parse as its type is refused, and nothing is written
    When I set the configuration "risk.max_order_quantity" for "testing" to "plenty" as NUMBER
    Then the call fails with INVALID_ARGUMENT
    And the error message contains "risk.max_order_quantity"
    And the configuration "risk.max_order_quantity" for "testing" still has its seeded value

  @blocker
  Scenario: A limit changed in the configuration service changes the risk decision without a restart
    Given the trading engine has accepted an order for 50 BTC-USD at 100
    And the configuration watch of "risk-monitor" is live
    When the configuration "risk.max_order_quantity" for "testing" is set to "10" as NUMBER
    Then within 5 seconds an order for 50 BTC-USD at 100 is REJECTED for "risk.max_order_quantity"
    And the configuration watch of "risk-monitor" did not reconnect meanwhile

  @normal
  Scenario: Repeated reads of the limits are served from the risk monitor's cache
    Given the trading engine has accepted an order for 1 BTC-USD at 100
    And the GetConfiguration calls of "configuration-service" are counted
    When the trading engine receives 10 orders for 1 BTC-USD at 100
    Then every order is ACCEPTED
    And "configuration-service" received 0 GetConfiguration calls since they were counted

  @normal @needs.restart @needs.chaos
  Scenario: Concurrent first reads of the limits make one fetch per limit
    Given "risk-monitor" is restarted
    And the test coordinator injects 300 ms of latency into "configuration-service" for 60000 ms
    And the chaos event becomes INJECTED
    And the GetConfiguration calls of "configuration-service" are counted
    When the trading engine receives 20 orders for 1 BTC-USD at 100 at once
    Then every order is ACCEPTED
    And "configuration-service" received 3 GetConfiguration calls since they were counted

  @critical @needs.stop
  Scenario: While the configuration service is down, risk decisions use the cached limits
    Given the trading engine has accepted an order for 1 BTC-USD at 100
    When every "configuration-service" instance is stopped
    Then the trading engine receives 5 orders for 1 BTC-USD at 100 and every one is ACCEPTED
    And an order for 1001 BTC-USD at 1 is REJECTED for "risk.max_order_quantity"

  @critical @needs.restart
  Scenario: After the configuration service restarts, a changed limit still reaches the risk monitor
    Given the trading engine has accepted an order for 50 BTC-USD at 100
    When "configuration-service" is restarted
    And the configuration "risk.max_order_quantity" for "testing" is set to "10" as NUMBER
    Then within 5 seconds an order for 50 BTC-USD at 100 is REJECTED for "risk.max_order_quantity"
