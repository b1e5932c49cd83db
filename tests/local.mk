# tests/: command-line, integration and server contract tests.
