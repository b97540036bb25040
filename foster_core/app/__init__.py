"""The app layer: Streamlit page setup, caching and the sidebar shared by app.py and app_pages/ (ui.py, the only
library code that imports Streamlit), and the plain helpers the pages lay out (forms.py, tables.py)."""
