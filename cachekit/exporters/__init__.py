"""Exporters of ``runtime.stats``: Prometheus (:mod:`.prometheus`, ``prometheus`` extra) and
OpenTelemetry metrics (:mod:`.otel`, ``otel`` extra). Both read the runtime's recorders on demand."""
