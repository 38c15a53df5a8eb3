"""The seed's Streamlit page, on igsync's public API: pick an account, fetch its insights, show
the `FetchResult` the seed's way, and chart what is stored.

    pip install 'igsync[streamlit]'
    streamlit run examples/streamlit_app.py

It reads the same configuration as the CLI (env and `.env`): IGSYNC_DATABASE_URL (or
SUPABASE_URL and SUPABASE_KEY) for the store holding `user_tokens`, and IGSYNC_GRAPH_URL /
IGSYNC_INSTAGRAM_URL to point it at the simulator (`python -m igsync.simulator`). Tokens stay
in the database: the page shows only their last four characters.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import streamlit as st

import igsync

st.title("Instagram insights")

accounts = [a for a in igsync.list_instagram_accounts() if a.user_id and a.account_id]
if not accounts:
    st.info("No Instagram account is stored yet: add one with `igsync accounts add`.")
    st.stop()

chosen = st.selectbox(
    "Account",
    accounts,
    format_func=lambda a: f"{a.account_id} (user {a.user_id}, token …{a.token_hint})",
    key="account",
)
days = st.number_input("Days to fetch", min_value=1, max_value=30, value=7, key="days")

if st.button("Fetch insights", key="fetch"):
    with st.spinner("Fetching from Meta's Graph API…"):
        result = igsync.fetch_and_store_instagram_insights(
            chosen.user_id, account_id=chosen.account_id, days=int(days)
        )
    # The seed's summary: one line for a success, the error list otherwise.
    if result.success:
        st.success(f"✅ Fetched {result.total_inserted} metric records")
    else:
        st.warning(f"⚠️ Inserted {result.total_inserted} records with {result.total_errors} errors")
        if result.errors:
            st.error("\n".join(result.errors))

rows = igsync.read_insights(
    chosen.user_id, account_id=chosen.account_id, since=date.today() - timedelta(days=60)
)
daily = [r for r in rows if r.local_date is not None and r.period == "day"]
if daily:
    st.subheader("Stored daily values")
    table = pd.DataFrame(
        {"local_date": r.local_date, "metric": r.metric, "value": r.value} for r in daily
    )
    # one column per metric; a day Meta had no value for stays empty (a gap), never 0
    chart = table.pivot_table(index="local_date", columns="metric", values="value", dropna=False)
    st.line_chart(chart)
else:
    st.caption("Nothing stored for this account in the last 60 days yet.")
