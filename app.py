"""FOSTER Studio: `streamlit run app.py`.

The entry point builds the navigation and does what every page shares, once per script run: the page's
title and layout, and the sidebar with the dataset in use and any job at work. The pages (app_pages/*.py)
only lay out what the foster_core library computes. The folder is not called pages/: Streamlit reads a
pages/ folder as an old-style multipage app, and would then run a page without this file on the first visit.
"""

import streamlit as st

from foster_core.app.ui import setup_page, sidebar

PAGES = [
    st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("app_pages/distill.py", title="Distill", icon=":material/compress:"),
    st.Page("app_pages/explore.py", title="Explore", icon=":material/scatter_plot:"),
    st.Page("app_pages/compare.py", title="Compare", icon=":material/leaderboard:"),
    st.Page("app_pages/export.py", title="Export", icon=":material/download:"),
]

page = st.navigation(PAGES)
setup_page(page.title)
sidebar()
page.run()
