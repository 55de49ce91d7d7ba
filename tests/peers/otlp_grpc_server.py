"""An OTLP/gRPC metrics receiver for the exporter's tests, built on the official OpenTelemetry
protos and grpcio (both installed by `cargo xtask setup --tests`).

Usage: otlp_grpc_server.py OUT.jsonl [CERT.pem KEY.pem]

Listens on a free loopback port (TLS when a certificate and key are given), prints the port on
the first line of stdout, and appends one JSON line per Export call to OUT.jsonl: the request's
metadata and the (metric name, time) of every data point. Runs until killed.
"""

import json
import sys
from concurrent import futures

import grpc
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)


class Recorder(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, out):
        self.out = out

    def Export(self, request, context):
        points = []
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    kind = m.WhichOneof("data")
                    if kind in ("gauge", "sum"):
                        for p in getattr(m, kind).data_points:
                            points.append([m.name, p.time_unix_nano])
        line = {"metadata": dict(context.invocation_metadata()), "points": points}
        with open(self.out, "a") as f:
            f.write(json.dumps(line) + "\n")
        return metrics_service_pb2.ExportMetricsServiceResponse()


def main():
    out = sys.argv[1]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Recorder(out), server)
    if len(sys.argv) == 4:
        with open(sys.argv[2], "rb") as c, open(sys.argv[3], "rb") as k:
            creds = grpc.ssl_server_credentials([(k.read(), c.read())])
        port = server.add_secure_port("127.0.0.1:0", creds)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
