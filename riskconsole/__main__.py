"""`python -m riskconsole ...`: the same CLI as the `riskconsole` script."""

from riskconsole.cli import main

if __name__ == "__main__":  # importing the module (the architecture test imports every module) runs nothing
    raise SystemExit(main())
