"""`python -m hiera_video COMMAND ...` (and `accelerate launch -m hiera_video COMMAND ...`): the same as the
`hiera-video` console script."""

import sys

from hiera_video.cli import main

if __name__ == "__main__":
    sys.exit(main())
