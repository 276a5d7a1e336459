"""Who may see the dashboard. On loopback (the default) anyone who can reach the port is
the user of this machine. Served on another address, the app needs either Streamlit's own
login through an identity provider ([auth] in Streamlit secrets) or a shared password from
MODELPICK_PASSWORD / the `modelpick_password` secret, asked once per browser session."""
from __future__ import annotations

import hmac
import os
import time

import streamlit as st

from engine.i18n import t

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _secret(name: str):
    try:
        return st.secrets.get(name)
    except Exception:  # no secrets file: nothing configured there
        return None


def configured_password() -> str | None:
    return os.environ.get("MODELPICK_PASSWORD") or _secret("modelpick_password") or None


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
        if address and address not in LOOPBACK:
            st.error(t("auth_exposed", lang, address=address))
            st.stop()
        return
    if st.session_state.get("_authenticated"):
        return
    st.title("ModelPick")
    with st.form("login"):
        given = st.text_input(t("auth_password", lang), type="password", key="_password")
        submitted = st.form_submit_button(t("auth_login", lang))
    if submitted:
        # constant-time comparison; a wrong guess costs a second
        if hmac.compare_digest(given.encode("utf-8"), password.encode("utf-8")):
            st.session_state._authenticated = True
            st.session_state.pop("_password", None)
            st.rerun()
        time.sleep(1.0)
        st.error(t("auth_wrong", lang))
    st.stop()
