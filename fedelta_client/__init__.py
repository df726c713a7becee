"""Talking to Fedelta from Python.

- `PosClient`: a partner's point of sale (enrol, update, erase, purchase, refund), every call
  signed (`fedelta_client.signing`), sent with an Idempotency-Key and retried safely
  (`fedelta_client.retry`); answers `Accepted` or raises `Refused` / `Unavailable`. Its till
  calls (till_balance, customer_rewards, redeem, hold, capture, void, redeem_coupon) answer a
  `TillAnswer` (points' answer, relayed by ingest).
- `InternalClient`: the services' internal APIs with a bearer token (balance, ledger, tier,
  notifications, stamp cards, challenges and badges, jobs, partners).
- `InsightsClient`: insights' API (a member's RFM, lifecycle, loyalty types and segments; the
  segments and their members; KPIs); `InternalClient.insights()` gives one with its token.
- `DevEnv` and `StackClient`: a local stack as `make up` describes it in `.fedelta/dev.env`
  (the web's address too: the member wallet and the program console, for browsers).

Only httpx and the standard library: nothing of the services is imported.
"""

from fedelta_client.answers import Accepted, FedeltaError, Refused, Unavailable
from fedelta_client.devenv import DevEnv, DevEnvError
from fedelta_client.internal import InsightsClient, InternalClient, ServiceUrls
from fedelta_client.pos import PosClient, TillAnswer, new_idempotency_key
from fedelta_client.retry import NO_RETRIES, RetryPolicy
from fedelta_client.signing import SIGNATURE_HEADER, sign, sign_request
from fedelta_client.stack import StackClient, service_urls

__all__ = [
    "NO_RETRIES",
    "SIGNATURE_HEADER",
    "Accepted",
    "DevEnv",
    "DevEnvError",
    "FedeltaError",
    "InsightsClient",
    "InternalClient",
    "PosClient",
    "Refused",
    "RetryPolicy",
    "ServiceUrls",
    "StackClient",
    "TillAnswer",
    "Unavailable",
    "new_idempotency_key",
    "service_urls",
    "sign",
    "sign_request",
]
