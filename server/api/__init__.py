"""The REST API under /api/v1, and the node's own endpoints (PROTOCOL.md, "REST API")."""
