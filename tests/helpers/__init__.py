"""What several test folders share and is not a fixture: repo paths, CLI runs, tiny and seed
releases, process clean-up.  Imported as ``tests.helpers.<module>`` (``tests`` is a package, so
pytest puts the repository root on ``sys.path``); fixtures stay in ``tests/conftest.py``."""
