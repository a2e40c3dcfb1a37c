"""ATLAS requests: support requests, queues, SLA and matching."""
