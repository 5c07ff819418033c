"""The MCP face: ``server`` builds the MCP server over a Memory and serves it on stdio or streamable HTTP
(mounted under ``/mcp`` by the REST app); ``tools`` defines the tools. ``memstrata mcp`` starts the stdio one."""

from memstrata.mcp.server import HttpMCP, build_mcp_server, principal_from_headers, run_stdio

__all__ = ["HttpMCP", "build_mcp_server", "principal_from_headers", "run_stdio"]
