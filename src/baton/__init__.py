"""Baton: durable shared state for teams of AI coding agents (MCP server over stdio or HTTP, and a CLI)."""

__version__ = "0.1.0"
