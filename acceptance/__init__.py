"""The acceptance suite's own library: stack targets, waits, gRPC and Allure helpers."""
