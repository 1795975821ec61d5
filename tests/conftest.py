"""Shared test set-up.

cctbx's Boost.Python extension must be loaded before gemmi's (nanobind) module: importing gemmi first
and cctbx second crashes the interpreter (segmentation fault in ``boost_adaptbx.boost.python``).
The tests that read exports with cctbx (tests/consumers.py) rely on this import order.
"""

try:  # cctbx-base is a test extra; without it the cctbx consumer tests are skipped
    import boost_adaptbx.boost.python  # noqa: F401
except ImportError:  # pragma: no cover
    pass
