@allure.epic:Observability @contract.trading @needs.tracing
Feature: One trace follows an order through the ecosystem
  Services export OpenTelemetry spans over OTLP with the W3C trace context in gRPC metadata; the
  suite runs the OTLP receiver.

  @critical
  Scenario: One SubmitOrder yields one trace across the trading engine and the risk monitor
    When the trading engine receives a traced order for 1 BTC-USD at 100
    Then the trace holds a server span of "trading-system-engine" for "SubmitOrder"
    And the trace holds a server span of "risk-monitor" for "CheckOrder" whose parent is a client span of "trading-system-engine"

  @critical @needs.restart
  Scenario: On a configuration cache miss the trace reaches the configuration service
    Given "risk-monitor" is restarted
    When the trading engine receives a traced order for 1 BTC-USD at 100
    Then the trace holds a server span of "risk-monitor" for "CheckOrder" whose parent is a client span of "trading-system-engine"
    And the trace holds a server span of "configuration-service" for "GetConfiguration" whose parent is a client span of "risk-monitor"
