"""Service names as registered in discovery, and the gRPC services each one serves."""

CONFIGURATION_SERVICE = "configuration-service"
RISK_MONITOR = "risk-monitor"
TEST_COORDINATOR = "test-coordinator"
TRADING_SYSTEM_ENGINE = "trading-system-engine"

ALL_SERVICES = (CONFIGURATION_SERVICE, RISK_MONITOR, TEST_COORDINATOR, TRADING_SYSTEM_ENGINE)

GRPC_SERVICES = {
    CONFIGURATION_SERVICE: "ecosystem.config.v1.ConfigurationService",
    RISK_MONITOR: "ecosystem.risk.v1.RiskMonitorService",
    TEST_COORDINATOR: "ecosystem.coordinator.v1.TestCoordinatorService",
    TRADING_SYSTEM_ENGINE: "ecosystem.trading.v1.TradingEngineService",
}
STATS_SERVICE = "ecosystem.common.v1.StatsService"

ENVIRONMENTS = ("development", "testing", "production", "docker")
