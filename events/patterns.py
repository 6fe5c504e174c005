"""Text rules shared by the event catalog and the functions, without pydantic.

`events.fields` builds the catalog's field types from them; a function that only needs
the rule (functions.core.auth checking a token's owner) imports it from here, so a read
function answers without loading pydantic first (a cold start pays ~75 ms for it).
"""

from __future__ import annotations

# Who a todo belongs to: 1–200 characters, no control characters (an API token's owner,
# or `slack:<team>:<user>`).
OWNER_PATTERN = r"^[^\x00-\x1f\x7f]{1,200}$"
