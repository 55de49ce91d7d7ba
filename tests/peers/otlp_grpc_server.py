"""An OTLP/gRPC receiver (metrics and traces) for the exporter's tests, built on the official
OpenTelemetry protos and grpcio (both installed by `cargo xtask setup --tests`).

Usage: otlp_grpc_server.py OUT.jsonl [CERT.pem KEY.pem]

Listens on a free loopback port (TLS when a certificate and key are given), prints the port on
the first line of stdout, and appends one JSON line per Export call to OUT.jsonl: the request's
metadata and either the (metric name, time) of every data point ("points") or, for spans, the
name, kind, times, status code and string/int/double attributes of each ("spans"). Runs until
killed.
"""

import json
import sys
from concurrent import futures

import grpc
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import (
    trace_service_pb2,
    trace_service_pb2_grpc,
)


def record(out, line):
    with open(out, "a") as f:
        f.write(json.dumps(line) + "\n")


def attribute(value):
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind in ("string_value", "int_value", "double_value") else None


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
        record(self.out, {"metadata": dict(context.invocation_metadata()), "points": points})
        return metrics_service_pb2.ExportMetricsServiceResponse()


class SpanRecorder(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, out):
        self.out = out

    def Export(self, request, context):
        spans = []
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                for s in ss.spans:
                    spans.append(
                        {
                            "name": s.name,
                            "kind": s.kind,
                            "trace_id": s.trace_id.hex(),
                            "start": s.start_time_unix_nano,
                            "end": s.end_time_unix_nano,
                            "status": s.status.code,
                            "attributes": {a.key: attribute(a.value) for a in s.attributes},
                        }
                    )
        record(self.out, {"metadata": dict(context.invocation_metadata()), "spans": spans})
        return trace_service_pb2.ExportTraceServiceResponse()


def main():
    out = sys.argv[1]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Recorder(out), server)
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(SpanRecorder(out), server)
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
