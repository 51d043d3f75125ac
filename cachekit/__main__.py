"""``python -m cachekit``: the ``cachekit`` command line (see :mod:`cachekit.cli`)."""

from cachekit.cli import main

if __name__ == "__main__":
    main()
