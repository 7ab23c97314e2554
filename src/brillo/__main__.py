"""``python -m brillo module:app``: the ``brillo`` command (see :mod:`brillo.serve`)."""

from brillo.serve import main

if __name__ == "__main__":
    main()
