"""configuration-service: typed, versioned configuration per environment over gRPC, stored in Redis.

Run with `python -m ecosystem.services.configuration_service`; settings come from ECOSYSTEM_* variables.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import NoReturn

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from ecosystem.api.config.v1 import config_pb2, config_pb2_grpc
from ecosystem.config_store import ConfigNotFoundError, ConfigStore, ConfigValidationError, StoredConfig
from ecosystem.logs import log_event
from ecosystem.names import CONFIGURATION_SERVICE, GRPC_SERVICES
from ecosystem.server import ServiceHost
from ecosystem.settings import Settings

DEFAULT_SEED = Path(__file__).resolve().parents[2] / "config" / "seed.toml"

_TYPE_TO_PROTO = {
    "string": config_pb2.VALUE_TYPE_STRING,
    "number": config_pb2.VALUE_TYPE_NUMBER,
    "boolean": config_pb2.VALUE_TYPE_BOOLEAN,
    "json": config_pb2.VALUE_TYPE_JSON,
}
_PROTO_TO_TYPE = {proto: name for name, proto in _TYPE_TO_PROTO.items()}


def to_proto(stored: StoredConfig) -> config_pb2.Configuration:
    updated_at = Timestamp()
    updated_at.FromMilliseconds(stored.updated_at_ms)
    return config_pb2.Configuration(
        key=stored.key,
        value=stored.value,
        type=_TYPE_TO_PROTO[stored.type],
        environment=stored.environment,
        version=stored.version,
        updated_at=updated_at,
    )


async def _abort(context: grpc.aio.ServicerContext, error: ConfigValidationError | ConfigNotFoundError) -> NoReturn:
    code = grpc.StatusCode.NOT_FOUND if isinstance(error, ConfigNotFoundError) else grpc.StatusCode.INVALID_ARGUMENT
    await context.abort(code, str(error))


def _type_name(value_type: int) -> str:
    # proto3 enums are open: a newer client may send a number this server has no name for.
    return config_pb2.ValueType.Name(value_type) if value_type in config_pb2.ValueType.values() else str(value_type)


class ConfigurationServicer(config_pb2_grpc.ConfigurationServiceServicer):
    """The five RPCs over a ConfigStore; rule violations are INVALID_ARGUMENT, missing keys NOT_FOUND."""

    def __init__(self, store: ConfigStore) -> None:
        self._store = store
        self._stopping = asyncio.Event()

    async def end_streams(self) -> None:
        """End every WatchConfiguration stream, so a draining instance does not hold its watchers."""
        self._stopping.set()

    async def GetConfiguration(
        self, request: config_pb2.GetConfigurationRequest, context: grpc.aio.ServicerContext
    ) -> config_pb2.Configuration:
        try:
            return to_proto(await self._store.get(request.key, request.environment))
        except (ConfigValidationError, ConfigNotFoundError) as error:
            await _abort(context, error)

    async def GetConfigurations(
        self, request: config_pb2.GetConfigurationsRequest, context: grpc.aio.ServicerContext
    ) -> config_pb2.GetConfigurationsResponse:
        try:
            found = await self._store.get_many(request.keys, request.environment)
        except (ConfigValidationError, ConfigNotFoundError) as error:
            await _abort(context, error)
        return config_pb2.GetConfigurationsResponse(configurations=[to_proto(stored) for stored in found])

    async def ListConfigurations(
        self, request: config_pb2.ListConfigurationsRequest, context: grpc.aio.ServicerContext
    ) -> config_pb2.ListConfigurationsResponse:
        try:
            found = await self._store.list(request.prefix, request.environment)
        except ConfigValidationError as error:
            await _abort(context, error)
        return config_pb2.ListConfigurationsResponse(configurations=[to_proto(stored) for stored in found])

    async def SetConfiguration(
        self, request: config_pb2.SetConfigurationRequest, context: grpc.aio.ServicerContext
    ) -> config_pb2.Configuration:
        try:
            type_ = _PROTO_TO_TYPE.get(request.type)
            if type_ is None:
                raise ConfigValidationError(
                    f"type of {request.key} is {_type_name(request.type)}: expected "
                    "VALUE_TYPE_STRING, VALUE_TYPE_NUMBER, VALUE_TYPE_BOOLEAN or VALUE_TYPE_JSON"
                )
            return to_proto(await self._store.set(request.key, request.value, type_, request.environment))
        except ConfigValidationError as error:
            await _abort(context, error)

    async def WatchConfiguration(
        self, request: config_pb2.WatchConfigurationRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[config_pb2.ConfigurationChange]:
        """Stream every change under the prefix made after the response headers, until the client cancels."""
        start_id = await self._store.latest_change_id()
        try:
            changes = self._store.changes(request.prefix, request.environment, start_id=start_id)
        except ConfigValidationError as error:
            await _abort(context, error)
        # Headers tell the client the watch is live: whatever is set after it has them gets streamed.
        await context.send_initial_metadata(())
        # The next change races the end of the stream (end_streams); the store's generator is closed with
        # the stream, however it ends, rather than at GC time.
        stopping = asyncio.ensure_future(self._stopping.wait())
        change: asyncio.Future[StoredConfig] | None = None
        try:
            while True:
                change = asyncio.ensure_future(anext(changes))
                await asyncio.wait((change, stopping), return_when=asyncio.FIRST_COMPLETED)
                if not change.done():
                    return
                try:
                    stored = change.result()
                except StopAsyncIteration:
                    return
                yield config_pb2.ConfigurationChange(configuration=to_proto(stored))
        finally:
            pending = [task for task in (change, stopping) if task is not None and not task.done()]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            await changes.aclose()


async def serve(settings: Settings) -> None:
    async with ServiceHost(CONFIGURATION_SERVICE, settings) as host:
        seed = Path(settings.config_seed) if settings.config_seed else DEFAULT_SEED
        store = ConfigStore(host.redis, seed=seed)
        log_event("config_seeded", path=str(seed), written=await store.seed(seed))
        servicer = ConfigurationServicer(store)
        host.add_service(
            config_pb2_grpc.add_ConfigurationServiceServicer_to_server, servicer, GRPC_SERVICES[CONFIGURATION_SERVICE]
        )
        host.on_shutdown(servicer.end_streams)
        await host.serve()


def main() -> None:
    asyncio.run(serve(Settings.from_env()))


if __name__ == "__main__":
    main()
