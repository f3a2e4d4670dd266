@allure.epic:Examples
Feature: The route guide answers unary and streaming calls
  A service with one method of each kind, registered by `python -m acceptance.register` because it
  does not register itself, checked with generic steps only. The five named places it knows lie, from
  west to east: Shohola, Patriots Path, Whippany, Kingston and the Mid Hudson Bridge.

  Background:
    Given a deadline of 3000 ms

  @blocker
  Scenario: GetFeature names the place at a known point
    When I call "routeguide.RouteGuide/GetFeature" on "route-guide" with
      """
      {"latitude": 407838351, "longitude": -746143763}
      """
    Then the call succeeds
    And the response field "name" is "Patriots Path, Mendham, NJ 07945, USA"

  @blocker
  Scenario: ListFeatures streams every place inside a rectangle, west to east, and counts them in a trailer
    When I call "routeguide.RouteGuide/ListFeatures" on "route-guide" with
      """
      {"lo": {"latitude": 400000000, "longitude": -750000000}, "hi": {"latitude": 420000000, "longitude": -730000000}}
      """
    Then the call succeeds
    And the call returned 5 messages
    And message 1 field "name" is "U.S. 6, Shohola, PA 18458, USA"
    And message 5 field "name" is "Mid Hudson Bridge, Poughkeepsie, NY 12601, USA"
    And the response trailer "x-feature-count" is "5"

  @normal
  Scenario: A stream can be read up to its first messages only
    Given the next call reads only the first 2 response messages
    When I call "routeguide.RouteGuide/ListFeatures" on "route-guide" with
      """
      {"lo": {"latitude": 400000000, "longitude": -750000000}, "hi": {"latitude": 420000000, "longitude": -730000000}}
      """
    Then the call succeeds
    And the call returned 2 messages

  @normal
  Scenario: A stream can be read until a message matches
    Given the next call reads response messages until the field "name" is "Patriots Path, Mendham, NJ 07945, USA"
    When I call "routeguide.RouteGuide/ListFeatures" on "route-guide" with
      """
      {"lo": {"latitude": 400000000, "longitude": -750000000}, "hi": {"latitude": 420000000, "longitude": -730000000}}
      """
    Then the call succeeds
    And the call returned 2 messages
    And message 2 field "location.latitude" is "407838351"

  @blocker
  Scenario: RecordRoute summarises a route sent as a client stream, one row per point
    When I call "routeguide.RouteGuide/RecordRoute" on "route-guide" with the messages
      | latitude  | longitude  |
      | 407838351 | -746143763 |
      | 408122808 | -743999179 |
      | 400000000 | -740000000 |
    Then the call succeeds
    And the response field "point_count" is "3"
    And the response field "feature_count" is "2"

  @normal
  Scenario: RecordRoute takes the client stream as a JSON list too
    When I call "routeguide.RouteGuide/RecordRoute" on "route-guide" with
      """
      [{"latitude": 407838351, "longitude": -746143763}]
      """
    Then the call succeeds
    And the response field "point_count" is "1"
    And the response field "feature_count" is "1"

  @blocker
  Scenario: RouteChat answers each note with the notes sent before it at the same point
    When I call "routeguide.RouteGuide/RouteChat" on "route-guide" with the messages
      | location.latitude | location.longitude | message   |
      | 1                 | 1                  | first     |
      | 1                 | 1                  | second    |
      | 2                 | 2                  | elsewhere |
      | 1                 | 1                  | third     |
    Then the call succeeds
    And the call returned 3 messages
    And message 1 field "message" is "first"
    And message 2 field "message" is "first"
    And message 3 field "message" is "second"
