"""What the tests share besides fixtures: servers, processes, projects, readers of what a cycle stored. No tests."""
