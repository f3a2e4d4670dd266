@allure.epic:Service_communication
Feature: Configuration lookup
  configuration-service serves typed values per environment; services read their limits through a
  caching client that follows changes without a restart.

  @critical
  Scenario Outline: <key> in <environment> is a <type>
    When I get the configuration "<key>" for "<environment>"
    Then the configuration value is <value> of type <type>

    Examples:
      | key                               | environment | value                             | type    |
      | risk.max_order_quantity           | testing     | 1000                              | NUMBER  |
      | risk.max_order_quantity           | production  | 100                               | NUMBER  |
      | risk.position_limits.max_notional | testing     | 1000000                           | NUMBER  |
      | risk.allowed_symbols              | development | ["BTC-USD","ETH-USD","SOL-USD"]   | JSON    |
      | trading.enabled                   | testing     | true                              | BOOLEAN |
      | trading.venue                     | testing     | SIM                               | STRING  |

  @normal
  Scenario: An unknown key is NOT_FOUND with the key in the message
    When I get the configuration "risk.no_such_limit" for "testing"
    Then the call fails with NOT_FOUND
    And the error message contains "Configuration not found: risk.no_such_limit"

  @normal
  Scenario Outline: A malformed key is INVALID_ARGUMENT naming it
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
    And the configuration "risk.max_order_quantity" for "testing" is still 1000

  @blocker
  Scenario: A limit changed in the configuration service changes the risk decision without a restart
    Given the trading engine has accepted an order for 50 BTC-USD at 100
    When the configuration "risk.max_order_quantity" for "testing" is set to "10" as NUMBER
    Then within 5 seconds an order for 50 BTC-USD at 100 is REJECTED for "risk.max_order_quantity"

  @normal
  Scenario: The configuration cache serves repeated reads from memory
    Given the trading engine has accepted an order for 1 BTC-USD at 100
    And the configuration cache statistics of "risk-monitor" are noted
    When the trading engine receives 10 orders for 1 BTC-USD at 100
    Then the configuration cache of "risk-monitor" counted 30 more hits and no more misses
