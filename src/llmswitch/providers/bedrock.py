"""AWS Bedrock: region, endpoint and credentials (SigV4 via botocore, or a Bedrock API key).

Credentials, in order: a Bedrock API key (`AWS_BEARER_TOKEN_BEDROCK`, or `api_key`/`api_key_env`
in the config) sent as `Authorization: Bearer`; `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY`
(+ `AWS_SESSION_TOKEN`) from the environment mapping given to the switch; then botocore's
standard chain for `providers.bedrock.profile` / `AWS_PROFILE` (shared files, SSO, process,
container and instance roles). Requests are signed with botocore's `SigV4Auth` (service
`bedrock`). With a custom base URL on a loopback host (a local replay server), missing
credentials are replaced by dummy ones instead of failing.

Endpoint: `LLMSWITCH_BEDROCK_BASE_URL`, else `providers.bedrock.base_url`, else
`AWS_ENDPOINT_URL_BEDROCK_RUNTIME`, else `AWS_ENDPOINT_URL` (as botocore reads them; both
ignored when `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`), else the regional endpoint.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from llmswitch.config.schema import ProviderConfig
from llmswitch.errors import AuthenticationError, ConfigError
from llmswitch.providers.provider import Provider
from llmswitch.providers.specs import base_url_env
from llmswitch.providers.transport import HttpRequest, TransportFactory

DEFAULT_REGION = "us-east-1"
REGION_ENV = ("AWS_REGION", "AWS_DEFAULT_REGION")
SIGNING_SERVICE = "bedrock"
DUMMY_KEY = ("AKIDLLMSWITCHLOCAL00", "llmswitch-local-replay-secret")
# Headers covered by the signature: the ones no proxy or client library rewrites.
SIGNED_HEADERS = ("host", "content-type", "accept")
INSTALL_HINT = "pip install 'llmswitch[bedrock]'"
ENDPOINT_ENV = ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "AWS_ENDPOINT_URL")
IGNORE_ENDPOINTS_ENV = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"


class BedrockProvider(Provider):
    """Bedrock Runtime in one region; signs every request (SigV4) unless an API key is set."""

    def __init__(
        self,
        name: str,
        config: ProviderConfig | None = None,
        env: Mapping[str, str] | None = None,
        transport: TransportFactory | None = None,
    ) -> None:
        super().__init__(name, config, env, transport)
        self._credentials: Any = None
        self._signed_with: Any = None
        """The frozen credentials of the last signature (their secrets are scrubbed)."""

    @property
    def region(self) -> str:
        """`providers.bedrock.region`, else `AWS_REGION` / `AWS_DEFAULT_REGION`, else us-east-1."""
        if self.config.region:
            return self.config.region
        for var in REGION_ENV:
            if self.env.get(var):
                return self.env[var]
        return DEFAULT_REGION

    @property
    def base_url(self) -> str:
        """`$LLMSWITCH_BEDROCK_BASE_URL`, else `base_url`, else `$AWS_ENDPOINT_URL_BEDROCK_RUNTIME`
        / `$AWS_ENDPOINT_URL`, else the regional endpoint."""
        url = self._configured_url() or f"https://bedrock-runtime.{self.region}.amazonaws.com"
        return url.rstrip("/")

    @property
    def custom_base_url(self) -> bool:
        """Whether an endpoint was configured (VPC endpoint, proxy, local server)."""
        return bool(self._configured_url())

    def _configured_url(self) -> str | None:
        url = self.env.get(base_url_env(self.name)) or self.config.base_url
        if url:
            return url
        if self.env.get(IGNORE_ENDPOINTS_ENV, "").strip().lower() == "true":
            return None
        return next((self.env[v].strip() for v in ENDPOINT_ENV if self.env.get(v, "").strip()),
                    None)

    def auth_headers(self, model: str | None = None) -> dict[str, str]:
        """Configured headers, plus `Authorization: Bearer` when a Bedrock API key is set."""
        headers = dict(self.config.headers)
        key = self.api_key(model)
        if key:
            headers["authorization"] = f"Bearer {key}"
        return headers

    async def sign(self, request: HttpRequest) -> HttpRequest:
        """Add SigV4 headers (`Authorization: AWS4-HMAC-SHA256 …`, `X-Amz-Date`, token)."""
        if self.api_key():
            return request
        credentials = await self._resolve_credentials()
        frozen = credentials.get_frozen_credentials()
        self._signed_with = frozen
        return sigv4_sign(request, frozen, self.region)

    def secrets(self) -> tuple[str, ...]:
        """The key and headers (as for every provider), plus the AWS secret access key and
        session token of the environment and of the last signature."""
        env_secrets = tuple(self.env.get(v) or "" for v in ("AWS_SECRET_ACCESS_KEY",
                                                             "AWS_SESSION_TOKEN"))
        signed = self._signed_with
        signed_secrets = (getattr(signed, "secret_key", None) or "",
                          getattr(signed, "token", None) or "")
        return tuple(s for s in (*super().secrets(), *env_secrets, *signed_secrets) if s)

    async def _resolve_credentials(self) -> Any:
        if self._credentials is None:
            # The chain may read files or ask a metadata endpoint: keep it off the event loop.
            # (Two first calls racing both resolve; the result is the same.)
            self._credentials = await asyncio.to_thread(self._find_credentials)
        return self._credentials

    def _find_credentials(self) -> Any:
        credentials_cls = _botocore_credentials()
        key_id, secret = self.env.get("AWS_ACCESS_KEY_ID"), self.env.get("AWS_SECRET_ACCESS_KEY")
        if key_id and secret:
            return credentials_cls(key_id, secret, self.env.get("AWS_SESSION_TOKEN") or None)
        if self.custom_base_url and _is_loopback(self.base_url):
            return credentials_cls(*DUMMY_KEY)
        found = self._chain_credentials()
        if found is not None:
            return found
        if self.custom_base_url:
            return credentials_cls(*DUMMY_KEY)
        raise AuthenticationError(
            "no AWS credentials for bedrock",
            provider=self.name,
            hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (plus AWS_SESSION_TOKEN for "
            "temporary keys), AWS_PROFILE (or providers.bedrock.profile), or a Bedrock API key "
            "in AWS_BEARER_TOKEN_BEDROCK",
        )

    def _chain_credentials(self) -> Any:
        import botocore.exceptions
        import botocore.session

        profile = self.config.profile or self.env.get("AWS_PROFILE") or None
        try:
            return botocore.session.Session(profile=profile).get_credentials()
        except botocore.exceptions.ProfileNotFound:
            raise ConfigError(
                f"AWS profile {profile!r} not found",
                provider=self.name,
                hint="check ~/.aws/config, AWS_PROFILE or providers.bedrock.profile",
            ) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise AuthenticationError(f"cannot load AWS credentials: {exc}",
                                      provider=self.name) from None


def sigv4_sign(request: HttpRequest, credentials: Any, region: str) -> HttpRequest:
    """`request` with SigV4 headers added by botocore's signer (never hand-rolled crypto).
    `credentials`: botocore credentials, or the frozen ones they give. The host header is
    signed as the URL gives it (as every HTTP client sends it)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    freeze = getattr(credentials, "get_frozen_credentials", None)
    frozen = freeze() if freeze is not None else credentials
    headers = {name: request.headers[name] for name in SIGNED_HEADERS if name in request.headers}
    aws = AWSRequest(method=request.method, url=request.url, data=request.body,
                     headers=headers)
    SigV4Auth(frozen, SIGNING_SERVICE, region).add_auth(aws)
    for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
        value = aws.headers.get(name)
        if value is not None:
            request.headers[name.lower()] = value
    return request


def _botocore_credentials() -> Any:
    try:
        from botocore.credentials import Credentials
    except ModuleNotFoundError:
        raise ConfigError(
            "signing Bedrock requests needs botocore",
            provider="bedrock",
            hint=f"{INSTALL_HINT}, or set a Bedrock API key in AWS_BEARER_TOKEN_BEDROCK",
        ) from None
    return Credentials


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
