"""The lean peer: the same app as peer.settings, deployed as a performance-minded
DRF user would (issue 17): only ``CommonMiddleware``, persistent database
connections, the JSON renderer only (as peer.settings already has).

It serves the same database as the peer (bench/data.py copies the seeded file),
so the two differ in deployment only, never in data.
"""

from peer.settings import *  # noqa: F403
from peer.settings import DATABASES

MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
# Each thread keeps its connection, as keyhouse does (CONN_MAX_AGE 600).
DATABASES["default"]["CONN_MAX_AGE"] = 600
