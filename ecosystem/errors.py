"""The root of the package's exceptions.

Every error the services' package raises derives from `EcosystemError`, so a caller can catch the
package's failures in one clause while each keeps its own class (and, where it is one, its stdlib base
such as ValueError or KeyError) for finer handling.
"""

from __future__ import annotations


class EcosystemError(Exception):
    """Every error the services' package raises derives from it."""
