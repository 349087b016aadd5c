"""A gRPC server and client from grpcio, without generated code (bytes in, bytes out), for the capture tests.

    python -m tests.support.grpc_peer serve PORT LOG    # prints "ready"; appends "METHOD CODE" per call to LOG
    python -m tests.support.grpc_peer call HOST PORT    # 5 unary Gets, one List streaming 4 items, one failing call
"""

from __future__ import annotations

import sys
from concurrent import futures

import grpc

SERVICE = "shop.Catalog"


def serve(port: int, log_path: str) -> None:
    log = open(log_path, "a", buffering=1)  # noqa: SIM115 - open for the server's life

    def get(request: bytes, context: grpc.ServicerContext) -> bytes:
        log.write("/shop.Catalog/Get 0\n")
        return b"item:" + request

    def listing(request: bytes, context: grpc.ServicerContext):
        for index in range(int(request or b"3")):
            yield b"item%d" % index
        log.write("/shop.Catalog/List 0\n")

    def missing(request: bytes, context: grpc.ServicerContext) -> bytes:
        log.write("/shop.Catalog/Missing 5\n")
        context.abort(grpc.StatusCode.NOT_FOUND, "no such item")

    handlers = grpc.method_handlers_generic_handler(SERVICE, {
        "Get": grpc.unary_unary_rpc_method_handler(get),
        "List": grpc.unary_stream_rpc_method_handler(listing),
        "Missing": grpc.unary_unary_rpc_method_handler(missing),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handlers,))
    server.add_insecure_port(f"0.0.0.0:{port}")
    server.start()
    print("ready", flush=True)
    server.wait_for_termination()


def call(host: str, port: int) -> None:
    with grpc.insecure_channel(f"{host}:{port}") as channel:
        get = channel.unary_unary(f"/{SERVICE}/Get")
        for index in range(5):
            assert get(b"%d" % index, timeout=10) == b"item:%d" % index
        assert list(channel.unary_stream(f"/{SERVICE}/List")(b"4", timeout=10)) == [b"item0", b"item1", b"item2",
                                                                                     b"item3"]
        try:
            channel.unary_unary(f"/{SERVICE}/Missing")(b"", timeout=10)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.NOT_FOUND
        else:
            raise AssertionError("Missing did not fail")


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3])
    else:
        call(sys.argv[2], int(sys.argv[3]))
