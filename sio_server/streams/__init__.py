"""The transports that are not Socket.IO: ADR-010's plain WebSocket and
Server-Sent Events, on one connection model and hub."""
