"""The MCP function's code: the gate, the tools, resources and prompts, and the SDK app.

The function's target is functions/mcp_function.py; importing this package has
no side effects, so its rules can be used and tested on their own.
"""
