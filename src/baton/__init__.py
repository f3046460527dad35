"""Baton: durable shared state for teams of AI coding agents (MCP stdio server + CLI)."""

__version__ = "0.1.0"
