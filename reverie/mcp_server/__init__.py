"""`reverie mcp`: the snapshot served to any agent over the Model Context Protocol."""
