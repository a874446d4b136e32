"""The subcommands of `hiera-video` (see hiera_video/cli.py for the list), one module each: its docstring is
the help text, `arguments(p)` adds its options, and `@cli.command(__doc__, arguments) def main(args)` makes
`main(argv, prog) -> exit code` with the one parser builder and error handler. The checkout's tools/*.py
are thin wrappers around these."""
