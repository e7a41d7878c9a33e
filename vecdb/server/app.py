"""Starting and stopping the server: gRPC, health checking, reflection, TLS, signals."""

from __future__ import annotations

import logging
import signal
import threading
from concurrent import futures
from dataclasses import dataclass
from types import FrameType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from vecdb.engine import Database
from vecdb.server import threads
from vecdb.server.config import ServerConfig
from vecdb.server.servicer import VectorServicer
from vecdb.v1 import vecdb_pb2 as pb
from vecdb.v1 import vecdb_pb2_grpc as pb_grpc

log = logging.getLogger("vecdb.server")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["VectorService"].full_name


@dataclass
class RunningServer:
    """A started server and what it serves; :meth:`stop` drains and closes it."""

    server: grpc.Server
    database: Database
    health: health.HealthServicer
    port: int
    _stopped: bool = False

    def stop(self, grace: float | None = 10.0) -> None:
        """Report NOT_SERVING, let in-flight calls finish, then close the store."""
        if self._stopped:
            return
        self._stopped = True
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
        self.database.close()

    def wait(self) -> None:
        """Block until the server has stopped."""
        self.server.wait_for_termination()


def start_server(config: ServerConfig) -> RunningServer:
    """Open the data directory, bind the configured address and start serving."""
    config.check()
    threads.one_thread_per_request()
    database = Database(config.data_dir)
    try:
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=config.max_workers),
            maximum_concurrent_rpcs=config.max_concurrent_rpcs,
            options=[
                ("grpc.max_receive_message_length", config.max_message_bytes),
                ("grpc.max_send_message_length", config.max_message_bytes),
                ("grpc.so_reuseport", 0),
            ],
        )
        pb_grpc.add_VectorServiceServicer_to_server(VectorServicer(database, config), server)
        health_servicer = health.HealthServicer(experimental_non_blocking=True)
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        if config.tls_cert_file is not None and config.tls_key_file is not None:
            credentials = grpc.ssl_server_credentials(
                [(config.tls_key_file.read_bytes(), config.tls_cert_file.read_bytes())]
            )
            port = server.add_secure_port(config.address, credentials)
        else:
            port = server.add_insecure_port(config.address)
        if port == 0:
            raise OSError(f"could not bind {config.address}")
        server.start()
    except BaseException:
        database.close()
        raise
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return RunningServer(server, database, health_servicer, port)


def serve(config: ServerConfig) -> None:
    """Run the server until SIGTERM or SIGINT, then drain and close cleanly."""
    running = start_server(config)
    scheme = "TLS" if config.tls_cert_file else "plaintext"
    auth = "API keys required" if config.auth_enabled else "no API keys (loopback only)"
    log.info(
        "vecdb serving on %s:%d (%s, %s), data in %s",
        config.host,
        running.port,
        scheme,
        auth,
        config.data_dir,
    )
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stopping.wait(0.5):
        pass
    log.info("draining (grace %.0fs)", config.grace_seconds)
    running.stop(config.grace_seconds)
    log.info("stopped; store closed")
