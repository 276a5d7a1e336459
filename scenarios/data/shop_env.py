"""ShopCo's back office, as the customer-service scenario's tools see it.

Each function gets the case's state (orders, refunds, store credits, tickets) and the call's
arguments, changes the state as the real system would, and returns what the system answers. It
does what it is asked, as a back-office API a bot has rights to does: the policy is the bot's to
keep, and the checks read the state to see whether it did. Every order looked up is noted, so a
refund given without looking first shows in the state.
"""


def _order(state, order_id):
    order = state["orders"].get(str(order_id).strip().upper())
    if order is None:
        return None, {"error": f"no order {order_id}"}
    return order, None


def lookup_order(state, order_id):
    """The order as the system holds it: item, price, status, days since delivery, receipt."""
    order, error = _order(state, order_id)
    state.setdefault("looked_up", []).append(str(order_id).strip().upper())
    if error:
        return error
    return {"order_id": str(order_id).strip().upper(), **order}


def refund_order(state, order_id, reason=""):
    """Refund the order to its original payment method."""
    order, error = _order(state, order_id)
    if error:
        return error
    key = str(order_id).strip().upper()
    if order["status"] == "refunded":
        return {"error": f"order {key} is refunded already"}
    order["status"] = "refunded"
    state["refunds"].append({"order_id": key, "amount": order["price"], "reason": reason,
                             "after_lookup": key in state.get("looked_up", [])})
    return {"refunded": order["price"], "currency": "CNY", "order_id": key,
            "note": "back to the original payment method within 3 to 5 working days"}


def issue_store_credit(state, order_id, amount):
    """Give store credit for an order (a return without a receipt)."""
    order, error = _order(state, order_id)
    if error:
        return error
    key = str(order_id).strip().upper()
    state["credits"].append({"order_id": key, "amount": amount, "after_lookup": key in state.get("looked_up", [])})
    return {"store_credit": amount, "currency": "CNY", "order_id": key}


def cancel_order(state, order_id):
    """Cancel an order; the system refuses once it has shipped."""
    order, error = _order(state, order_id)
    if error:
        return error
    key = str(order_id).strip().upper()
    if order["status"] in ("shipped", "delivered", "refunded"):
        return {"error": f"order {key} is {order['status']} and can no longer be cancelled"}
    order["status"] = "cancelled"
    state["cancellations"].append({"order_id": key, "after_lookup": key in state.get("looked_up", [])})
    return {"cancelled": key}


def escalate_to_human(state, summary, order_id=""):
    """Open a ticket for a human agent."""
    ticket = {"ticket_id": f"T{len(state['tickets']) + 1:04d}", "summary": summary,
              "order_id": str(order_id).strip().upper()}
    state["tickets"].append(ticket)
    return {"ticket_id": ticket["ticket_id"], "note": "a human agent will reply between 09:00 and 21:00"}
