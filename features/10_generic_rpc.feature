@allure.epic:Service_communication @contract.trading
Feature: Any RPC by its full method name with a JSON body
  The generic steps work on any service that serves reflection, not only on this ecosystem.

  Background:
    Given the testing limits are
      | key                     | value |
      | risk.max_order_quantity | 1000  |

  @normal
  Scenario: Call an RPC by name and check fields of the response
    Given a deadline of 2000 ms
    When I call "ecosystem.config.v1.ConfigurationService/GetConfiguration" on "configuration-service" with
      """
      {"key": "risk.max_order_quantity", "environment": "testing"}
      """
    Then the call succeeds
    And the response field "type" is "VALUE_TYPE_NUMBER"
    And the response field "value" is "1000"

  @normal @needs.tracing
  Scenario: Metadata travels with the call
    Given the metadata "traceparent" is "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    When I call "ecosystem.trading.v1.TradingEngineService/GetStatus" on "trading-system-engine" with
      """
      {}
      """
    Then the call succeeds
    And the response field "dependencies" has 3 items
    And trace "0af7651916cd43dd8448eb211c80319c" holds a server span of "trading-system-engine" for "GetStatus"
