@allure.epic:Examples
Feature: The greeter answers by name
  A unary service that registers itself by following docs/REGISTRY.md, checked with generic steps only.

  @blocker
  Scenario: SayHello greets the caller by name, with a version header and the request id as a trailer
    Given the metadata "x-request-id" is "release-42"
    When I call "helloworld.Greeter/SayHello" on "greeter" with
      """
      {"name": "release manager"}
      """
    Then the call succeeds
    And the response field "message" is "Hello, release manager!"
    And the response header "x-greeter-version" is "1.4.2"
    And the response trailer "x-request-id" is "release-42"

  @normal
  Scenario: An empty name is INVALID_ARGUMENT naming the field
    When I call "helloworld.Greeter/SayHello" on "greeter"
    Then the call fails with INVALID_ARGUMENT
    And the error message contains "name"

  @normal
  Scenario: A method the greeter does not have is UNIMPLEMENTED
    When I call "helloworld.Greeter/SayGoodbye" on "greeter"
    Then the call fails with UNIMPLEMENTED
