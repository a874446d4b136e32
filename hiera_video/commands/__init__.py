"""The subcommands of `hiera-video` (see hiera_video/cli.py for the list), one module each with
`main(argv, prog) -> exit code`. The checkout's tools/*.py are thin wrappers around these."""
