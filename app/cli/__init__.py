"""The `credit` command: click commands only; they parse options, call the domain and print."""
