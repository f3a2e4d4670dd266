"""The generic steps' driver on the example stack (real processes, real Redis): every kind of method, metadata,
every outcome assertable, and each mistake a feature can make reported as one line."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from acceptance.drivers.calls import parse_json, table_messages
from acceptance.manifest import load_manifest
from acceptance.redis_server import free_port
from acceptance.rpc import RpcClient
from acceptance.suite import Suite
from acceptance.targets.launched import LaunchedTarget

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = load_manifest(REPO_ROOT / "examples" / "manifest.toml")
RECTANGLE = {
    "lo": {"latitude": 400000000, "longitude": -750000000}, "hi": {"latitude": 420000000, "longitude": -730000000}
}


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    target = LaunchedTarget(EXAMPLES, log_dir=tmp_path_factory.mktemp("example-logs"))
    target.start()
    suite = Suite(target, EXAMPLES)
    yield suite
    suite.close()
    target.stop_all()


def one_line(error: pytest.ExceptionInfo[AssertionError]) -> str:
    message = str(error.value)
    assert "\n" not in message and "Traceback" not in message, message
    return message


def test_unary_call_with_request_metadata_headers_and_trailers(suite: Suite) -> None:
    suite.calls.add_metadata("x-request-id", "r-7")
    suite.calls.call("helloworld.Greeter/SayHello", "greeter", {"name": "Ada"})
    suite.calls.expect_ok()
    suite.calls.expect_field("message", "Hello, Ada!")
    suite.calls.expect_header("x-greeter-version", "1.4.2")
    suite.calls.expect_trailer("x-request-id", "r-7")


def test_server_stream_returns_every_message_and_its_trailer(suite: Suite) -> None:
    suite.calls.call("routeguide.RouteGuide/ListFeatures", "route-guide", RECTANGLE)
    suite.calls.expect_ok()
    suite.calls.expect_message_count(5)
    suite.calls.expect_message_field(2, "name", "Patriots Path, Mendham, NJ 07945, USA")
    suite.calls.expect_trailer("x-feature-count", "5")


def test_server_stream_read_can_stop_after_n_or_at_a_match(suite: Suite) -> None:
    suite.calls.read_first(1)
    suite.calls.call("routeguide.RouteGuide/ListFeatures", "route-guide", RECTANGLE)
    suite.calls.expect_ok()
    suite.calls.expect_message_count(1)
    suite.calls.read_until("location.longitude", "-743999179")
    suite.calls.call("routeguide.RouteGuide/ListFeatures", "route-guide", RECTANGLE)
    suite.calls.expect_message_count(3)


def test_client_stream_from_a_table_and_bidi_from_a_list(suite: Suite) -> None:
    points = table_messages(["latitude", "longitude"], [["407838351", "-746143763"], ["1", "1"]])
    suite.calls.call("routeguide.RouteGuide/RecordRoute", "route-guide", points)
    suite.calls.expect_field("point_count", "2")
    suite.calls.expect_field("feature_count", "1")
    notes = [{"location": {"latitude": 5}, "message": m} for m in ("a", "b", "c")]
    suite.calls.call("routeguide.RouteGuide/RouteChat", "route-guide", notes)
    suite.calls.expect_message_count(3)  # b answers a; c answers a and b
    suite.calls.expect_message_field(3, "message", "b")


def test_a_stream_asserted_as_one_response_says_to_name_a_message(suite: Suite) -> None:
    suite.calls.call("routeguide.RouteGuide/ListFeatures", "route-guide", RECTANGLE)
    with pytest.raises(AssertionError) as error:
        suite.calls.expect_field("name", "x")
    assert "5 response messages" in one_line(error) and "message 1 field" in str(error.value)



def test_missing_method_and_service_are_unimplemented_and_name_what_exists(suite: Suite) -> None:
    suite.calls.call("helloworld.Greeter/SayGoodbye", "greeter", {"name": "Ada"})
    suite.calls.expect_code("UNIMPLEMENTED")
    with pytest.raises(AssertionError) as error:
        suite.calls.expect_ok()
    assert "helloworld.Greeter has no method SayGoodbye; its methods: SayHello" in str(error.value).splitlines()[0]
    suite.calls.call("helloworld.Farewell/SayGoodbye", "greeter", None)
    suite.calls.expect_code("UNIMPLEMENTED")
    assert "lists no service helloworld.Farewell; it lists: grpc.health.v1.Health" in suite.scenario.last_call().note


def test_an_endpoint_that_does_not_answer_is_unavailable() -> None:
    client = RpcClient()
    try:
        result = client.call(f"127.0.0.1:{free_port()}", "helloworld.Greeter/SayHello", {"name": "x"}, timeout=2)
    finally:
        client.close()
    assert result.code == grpc.StatusCode.UNAVAILABLE, result.describe()


def test_request_mistakes_are_one_line_naming_what_is_valid(suite: Suite) -> None:
    with pytest.raises(AssertionError) as error:
        parse_json("helloworld.Greeter/SayHello", '{"name" "x"}')
    assert re.search(r"is not JSON: Expecting ':' delimiter at line 1 column 9", one_line(error))
    with pytest.raises(AssertionError) as error:
        suite.calls.call("helloworld.Greeter/SayHello", "greeter", {"nme": "x"})
    assert 'has no field named "nme"' in one_line(error) and "(its fields: name)" in str(error.value)
    with pytest.raises(AssertionError) as error:
        suite.calls.call("routeguide.RouteGuide/RecordRoute", "route-guide", {"latitude": 1})
    assert "is client streaming: give its request messages as a JSON list" in one_line(error)
    with pytest.raises(AssertionError) as error:
        suite.calls.call("helloworld.Greeter/SayHello", "gretter", {"name": "x"})
    assert "'gretter' is not a service of the manifest manifest.toml: it declares greeter, route-guide" in one_line(
        error
    )
    with pytest.raises(AssertionError) as error:
        suite.calls.expect_code("NOTFOUND")
    assert "did you mean NOT_FOUND?" in one_line(error)
    with pytest.raises(AssertionError) as error:
        suite.calls.call("SayHello", "greeter", {"name": "x"})
    assert "is not a full method name: write it as package.Service/Method" in one_line(error)
