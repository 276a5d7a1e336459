"""Who may see the dashboard. On loopback (the default) anyone who can reach the port is
the user of this machine. Served on another address, the app needs either Streamlit's own
login through an identity provider ([auth] in Streamlit secrets) or a shared password from
MODELPICK_PASSWORD / the `modelpick_password` secret, asked once per browser session."""
from __future__ import annotations

import hmac
import logging
import os
import threading
import time
from dataclasses import dataclass

import streamlit as st

from engine.i18n import t
from engine.redact import hold

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
log = logging.getLogger("modelpick.auth")

# Failed logins are counted per client address in the server process, across all browser
# sessions (a new session or tab is no way round it): each failure doubles the wait before the
# next try from that address (1 s, 2 s, 4 s, ... up to a minute); LOCKOUT_AFTER failures lock it
# out for LOCKOUT_S. A correct password clears the count; so do FORGET_S without a failure.
LOCKOUT_AFTER, LOCKOUT_S, MAX_DELAY_S, FORGET_S = 10, 15 * 60, 60.0, 30 * 60


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0
    not_before: float = 0.0


_FAILURES: dict[str, _Failures] = {}
_LOCK = threading.Lock()


def client_address() -> str:
    """The browser's address as the server saw it; "unknown" where there is none (a bare run)."""
    try:
        address = st.context.ip_address
    except Exception:  # no request context
        return "unknown"
    return address if isinstance(address, str) and address else "unknown"


def wait_left(address: str, now: float | None = None) -> float:
    """Seconds before `address` may try a password again (0 when it may now)."""
    now = time.monotonic() if now is None else now
    with _LOCK:
        f = _FAILURES.get(address)
        if f and now - f.last > FORGET_S:
            _FAILURES.pop(address, None)
            return 0.0
        return max(0.0, f.not_before - now) if f else 0.0


def record_failure(address: str, now: float | None = None) -> float:
    """Count a wrong password from `address`; the wait before its next try."""
    now = time.monotonic() if now is None else now
    with _LOCK:
        f = _FAILURES.setdefault(address, _Failures())
        f.count, f.last = f.count + 1, now
        wait = LOCKOUT_S if f.count >= LOCKOUT_AFTER else min(MAX_DELAY_S, 2.0 ** (f.count - 1))
        f.not_before = now + wait
    if wait >= LOCKOUT_S:
        log.warning("login: %d wrong passwords from %s; locked out for %d min", f.count, address, LOCKOUT_S // 60)
    else:
        log.warning("login: wrong password from %s (%d in a row); next try in %.0f s", address, f.count, wait)
    return wait


def record_success(address: str) -> None:
    with _LOCK:
        _FAILURES.pop(address, None)


def _secret(name: str):
    try:
        return st.secrets.get(name)
    except Exception:  # no secrets file: nothing configured there
        return None


def configured_password() -> str | None:
    password = os.environ.get("MODELPICK_PASSWORD") or _secret("modelpick_password") or None
    hold(password)  # masked wherever text is stored or logged, like an API key
    return password


def _identity_provider() -> bool:
    return bool(_secret("auth"))


def gate(lang: str) -> None:
    """Stop the script unless this browser session may see the app."""
    if _identity_provider():
        if not st.user.is_logged_in:
            st.title("ModelPick")
            st.button(t("auth_login_provider", lang), on_click=st.login)
            st.stop()
        return
    password = configured_password()
    address = str(st.get_option("server.address") or "")
    if not password:
        # empty or unset means every interface (Streamlit's default), as exposed as 0.0.0.0
        if address not in LOOPBACK:
            st.error(t("auth_exposed", lang, address=address or t("auth_all_addresses", lang)))
            st.stop()
        return
    if st.session_state.get("_authenticated"):
        return
    st.title("ModelPick")
    with st.form("login"):
        given = st.text_input(t("auth_password", lang), type="password", key="_password")
        submitted = st.form_submit_button(t("auth_login", lang))
    if submitted:
        client = client_address()
        wait = wait_left(client)
        if wait > 0:  # not even compared: the address must wait (or is locked out)
            st.error(t("auth_wait", lang, s=f"{wait:.0f}"))
            st.stop()
        # constant-time comparison
        if hmac.compare_digest(given.encode("utf-8"), password.encode("utf-8")):
            record_success(client)
            st.session_state._authenticated = True
            st.session_state.pop("_password", None)
            st.rerun()
        wait = record_failure(client)
        time.sleep(min(wait, 1.0))
        st.error(t("auth_wrong", lang) + (" " + t("auth_next", lang, s=f"{wait:.0f}") if wait > 1 else ""))
    st.stop()
