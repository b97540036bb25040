"""The app layer: Streamlit page setup, caching and the sidebar shared by app.py and pages/. The only
code that imports Streamlit."""
