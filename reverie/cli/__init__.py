"""The command line: `commands` declares them, `render` prints their results for people."""
