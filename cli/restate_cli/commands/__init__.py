"""One module per command group; each exposes the click group (or command) it defines."""
