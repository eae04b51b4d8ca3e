"""Fair Clustering Lab: entry point. `streamlit run app.py`."""
from pathlib import Path

import streamlit as st
import torch

from dashboard_lib.methods import available_devices
from dashboard_lib.settings import store_dir
from dashboard_lib.state import access_gate, access_granted, app_navigation, data_folder_input, job_registry, warm_up
from dashboard_lib.store import StoreDamaged
from dashboard_lib.text import md

# The page icon is a file of the app: a Material icon as favicon would be fetched from fonts.gstatic.com.
ICON = Path(__file__).parent / "dashboard_lib" / "assets" / "icon.png"
st.set_page_config(page_title="Fair Clustering Lab", page_icon=str(ICON), layout="wide")

# Start is the default page, served at /: every other page then answers its own path (/train, /monitor, …).
pages = [
    st.Page("pages/start.py", title="Start", icon=":material/home:", default=True),
    st.Page("pages/lesson.py", title="Lesson: see the bias", icon=":material/school:", url_path="lesson"),
    st.Page("pages/data.py", title="Data", icon=":material/dataset:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/monitor.py", title="Monitor", icon=":material/monitoring:"),
    st.Page("pages/embeddings.py", title="Embeddings", icon=":material/scatter_plot:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("pages/sweep.py", title="Sweep", icon=":material/grid_on:"),
    st.Page("pages/explain.py", title="Explain", icon=":material/visibility:"),
    st.Page("pages/audit.py", title="Audit", icon=":material/fact_check:"),
]
page = st.navigation(pages, position="sidebar" if access_granted() else "hidden")  # not even the page list when locked
access_gate()  # a password before anything else, where the server is reachable from the network (none set: it stops)
try:  # a damaged run store: one clear message on every page, never a traceback
    warm_up()
    with st.sidebar:
        st.markdown("**Fair Clustering Lab**: explore bias in clusterings.")
        data_folder_input()
        registry = job_registry()
        running = registry.running_ids()
        st.caption(f"Devices here: {', '.join(available_devices())} · CPU training threads: {torch.get_num_threads()}")
        st.caption(f"Run store: `{store_dir()}`" + (f" · {len(running)} run(s) training" if running else ""))

    with app_navigation():
        page.run()
except StoreDamaged as exc:
    st.error(md(exc), icon=":material/report:")
