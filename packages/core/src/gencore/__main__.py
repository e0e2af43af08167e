"""``python -m gencore``: the gencore command line."""

from gencore.cli import main

if __name__ == "__main__":
    main()
