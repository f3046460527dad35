"""The SDK's floor: a bare MCPServer with one no-op tool, served on stdio (what `baton serve` is compared to)."""

from mcp.server.mcpserver import MCPServer

server = MCPServer("noop")


@server.tool(name="noop")
async def noop() -> str:
    """Do nothing."""
    return "ok"


if __name__ == "__main__":
    server.run()
