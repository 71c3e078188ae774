"""Event hook for other services (GRANT-11): sent after commit when access was taken away.

``grant_access_revoked`` fires with ``grants=[{"grant_id", "organization_id", "creator_id",
"scope", "live_room_id", "reason"}]`` where reason is ``"revoked"`` or ``"expired"``; a
receiver can drop what it cached. Organizations get the same as a signed webhook.
"""

from django.dispatch import Signal

grant_access_revoked = Signal()
