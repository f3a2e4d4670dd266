@allure.epic:Security @contract.trading @needs.security
Feature: A secure stack refuses whoever it cannot trust
  Every connection is mutual TLS with certificates from the stack's own CA: a caller proves who it is,
  and a server must prove to be the service the caller resolved, so a registry entry alone can never
  redirect traffic. Each method is authorized by the caller's identity, and each service's Redis user
  may write only its own registry keys.

  Background:
    Given the services heartbeat every third of a registry TTL of 3000 ms
    And the testing limits are
      | key                     | value |
      | risk.max_order_quantity | 1000  |

  @blocker
  Scenario: A plaintext client is refused
    When a plaintext client asks "risk-monitor" for its health
    Then the connection is refused

  @blocker
  Scenario: A client whose certificate the stack's CA did not issue is refused
    When a client with a certificate from another CA asks "risk-monitor" for its health
    Then the connection is refused

  @blocker
  Scenario Outline: An impostor risk monitor registered in Redis with <certificate> gets no order
    Given an impostor of "risk-monitor" with the certificate of "<certificate>" is registered in Redis
    When the trading engine receives 10 orders for 1000000 BTC-USD at 100
    Then every order is REJECTED
    And the impostor received no order
    And the trading engine reports the impostor of "risk-monitor" as rejected

    Examples:
      | certificate      |
      | test-coordinator |
      | self-signed      |

  @blocker
  Scenario: Only the admin identity may change a limit
    When "risk-monitor" calls "ecosystem.config.v1.ConfigurationService/SetConfiguration" on "configuration-service" with
      """
      {"key": "risk.max_order_quantity", "environment": "testing", "value": "1000000000", "type": "VALUE_TYPE_NUMBER"}
      """
    Then the call fails with PERMISSION_DENIED
    And the error message contains "identity 'risk-monitor' may not call /ecosystem.config.v1.ConfigurationService/SetConfiguration"
    And the configuration "risk.max_order_quantity" for "testing" still has its seeded value

  @blocker
  Scenario: Only the suite and the test coordinator may inject chaos
    When "trading-system-engine" calls "ecosystem.coordinator.v1.TestCoordinatorService/InjectChaos" on "test-coordinator" with
      """
      {"event_type": "ERROR_INJECTION", "target_service": "risk-monitor", "duration_ms": 600000, "parameters": {"percentage": "100", "code": "INTERNAL"}}
      """
    Then the call fails with PERMISSION_DENIED
    And the error message contains "identity 'trading-system-engine' may not call"

  @critical
  Scenario: A service's Redis user cannot write another service's registry entry
    When "risk-monitor" writes an entry of "trading-system-engine" in Redis
    Then Redis refuses the write

  @critical
  Scenario: A live instance whose registry entry was deleted registers again at its next heartbeat
    When the registry entry of "risk-monitor" is deleted
    Then every service is registered again within one heartbeat
