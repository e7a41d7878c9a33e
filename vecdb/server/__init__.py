"""gRPC glue only: servicer, protobuf <-> engine conversion, auth, errors -> status codes."""

from vecdb.server.app import RunningServer, serve, start_server
from vecdb.server.config import ServerConfig, load_config

__all__ = ["RunningServer", "ServerConfig", "load_config", "serve", "start_server"]
