@allure.epic:Service_communication
Feature: Every declared service is registered, healthy and self-describing
  Each service the stack manifest declares keeps a registry entry by the registry contract at an
  endpoint that answers, answers grpc.health.v1 for its declared name (NOT_FOUND for a name it does
  not serve) and lists its API by reflection, so any gRPC client can find it, tell it is ready and
  see what it offers. The examples come from the manifest: one row per declared service.

  @blocker @manifest.examples
  Scenario Outline: <service> is registered by the registry contract where it answers
    Then "<service>" is registered by the registry contract at endpoints that answer SERVING

    Examples: the services the manifest declares
      | service |

  @blocker @manifest.examples
  Scenario Outline: <service> is SERVING for <health_service>
    Then "<service>" reports SERVING for "<health_service>"

    Examples: the services the manifest declares
      | service | health_service |

  @normal @manifest.examples
  Scenario Outline: A health check on <service> for a service it does not serve is NOT_FOUND
    When I ask "<service>" for the health of "no.such.Service"
    Then the call fails with NOT_FOUND

    Examples: the services the manifest declares
      | service |

  @normal @manifest.examples @needs.reflection
  Scenario Outline: Reflection on <service> lists <grpc_service> and grpc.health.v1.Health
    Then reflection on "<service>" lists "<grpc_service>"
    And reflection on "<service>" lists "grpc.health.v1.Health"

    Examples: the gRPC services the manifest declares
      | service | grpc_service |
