"""Async Python client for the OMN venue: signed REST, a websocket session with order entry,
private streams and a gap-detecting local book.

    async with VenueClient("http://127.0.0.1:8000", key_id, private_key) as client:
        ack = await client.place("OMN-A", "buy", "10", "101.25")
        stream = await client.connect(cancel_on_disconnect=True)
        book = await stream.local_book("OMN-A")

Exception tree::

    VenueClientError
    ├── ApiError         the venue refused (stable ``code``, ``message``, ``status``, ``retry_after``)
    ├── TransportError   connection problems (httpx / websockets errors translated)
    ├── BookGapError     a book delta was missed (handled inside: the book resyncs)
    └── KeyFormatError   not a raw 32-byte Ed25519 key
"""

from venueclient.book import LocalBook
from venueclient.client import VenueClient, VenueStream, new_client_order_id
from venueclient.errors import ApiError, BookGapError, KeyFormatError, TransportError, VenueClientError
from venueclient.signing import generate_keypair, public_key_of

__all__ = [
    "ApiError",
    "BookGapError",
    "KeyFormatError",
    "LocalBook",
    "TransportError",
    "VenueClient",
    "VenueClientError",
    "VenueStream",
    "generate_keypair",
    "new_client_order_id",
    "public_key_of",
]
