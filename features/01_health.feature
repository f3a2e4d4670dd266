@allure.epic:Service_communication
Feature: Health and reflection
  Every service answers grpc.health.v1 for the gRPC service it serves and lists its API by
  reflection, so any gRPC client can tell it is ready and discover what it offers.

  @blocker
  Scenario Outline: <service> is SERVING
    Then "<service>" reports SERVING for "<grpc service>"

    Examples:
      | service               | grpc service                                    |
      | configuration-service | ecosystem.config.v1.ConfigurationService        |
      | risk-monitor          | ecosystem.risk.v1.RiskMonitorService            |
      | test-coordinator      | ecosystem.coordinator.v1.TestCoordinatorService |
      | trading-system-engine | ecosystem.trading.v1.TradingEngineService       |

  @normal
  Scenario: A health check for a service that does not exist is NOT_FOUND
    When I ask "risk-monitor" for the health of "no.such.Service"
    Then the call fails with NOT_FOUND

  @normal
  Scenario Outline: Reflection on <service> lists its API, health and statistics
    Then reflection on "<service>" lists "<grpc service>"
    And reflection on "<service>" lists "grpc.health.v1.Health"
    And reflection on "<service>" lists "ecosystem.common.v1.StatsService"

    Examples:
      | service               | grpc service                                    |
      | configuration-service | ecosystem.config.v1.ConfigurationService        |
      | risk-monitor          | ecosystem.risk.v1.RiskMonitorService            |
      | test-coordinator      | ecosystem.coordinator.v1.TestCoordinatorService |
      | trading-system-engine | ecosystem.trading.v1.TradingEngineService       |
