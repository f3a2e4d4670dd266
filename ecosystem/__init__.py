"""The reference trading ecosystem: four grpc.aio services that discover each other through Redis."""

__version__ = "1.0.0"
